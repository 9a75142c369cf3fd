"""Scenarios by name: a plain dict of loaders, so importing guimo never imports torch."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from guimo.errors import GuimoError

if TYPE_CHECKING:
    from guimo.scenarios.base import Scenario

# name -> module defining SCENARIO. The flagship default comes first.
SCENARIOS: dict[str, str] = {
    "recommend": "guimo.scenarios.recommend",
    "lm": "guimo.scenarios.lm",
    "categorize": "guimo.scenarios.categorize",
    "faq": "guimo.scenarios.faq",
    "support": "guimo.scenarios.support",
    "search": "guimo.scenarios.search",
    "fraud": "guimo.scenarios.fraud",
    "credit": "guimo.scenarios.credit",
    "health": "guimo.scenarios.health",
    "assistant": "guimo.scenarios.assistant",
}
DEFAULT = "recommend"


def get(name: str) -> "Scenario":
    if name not in SCENARIOS:
        raise GuimoError(f"unknown scenario '{name}'; choose one of: {', '.join(SCENARIOS)}")
    return import_module(SCENARIOS[name]).SCENARIO
