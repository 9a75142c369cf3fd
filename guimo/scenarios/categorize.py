"""`categorize` — product titles to categories, for a shop or a price-comparison site.

Every offer a merchant feeds in must land in the right category before it can be listed,
compared or searched. The model is the pretrained MiniLM encoder fine-tuned with a linear head,
temperature-calibrated, beside TF-IDF + linear SVM and frozen MiniLM + logistic regression: the
classification core `guimo.scenarios.textclass`, shared with `support`. What is ours here is
the data:

- default: the generated catalogue (`guimo.data.catalogue.generate_catalogue`): ten categories
  with brands, model names, specs and several merchants' title styles, the confusable
  fridge / fridge freezer / freezer trio among them.
- ``--data titles.csv``: ``title,category`` columns (``data.text_field``, ``data.label_field`` to
  name others; ``data.group_field`` for a product-cluster column).
- PriceRunner (``--data ../shared/data/pricerunner``, the folder or its CSV): recognised by its
  header; its ``Product Title``, ``Category Label`` and ``Cluster ID`` columns are used unless set.

Splits are grouped by product cluster (the generator's products, PriceRunner's clusters, a
CSV's ``data.group_field``): the same product never appears in training and again, under
another shop's spelling, in test. Served through ``/v1/classifications`` and ``guimo predict``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.data.catalogue import PRICERUNNER_FILE, CatalogueGeneratorConfig, is_pricerunner
from guimo.scenarios.base import InitConfig, OptimizeConfig
from guimo.scenarios.textclass import (TextClassScenario, TextDataConfig, TextEvalConfig, TextModelConfig, default_init,
                                       default_train)
from guimo.train.config import TrainConfig

# PriceRunner's columns (its SOURCE.md): used when data.path is PriceRunner and the field is left at its default.
PRICERUNNER_FIELDS = {"text_field": "Product Title", "label_field": "Category Label", "group_field": "Cluster ID"}


@dataclass
class CategorizeConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the head's init, data order and dropout"})
    data: TextDataConfig = field(default_factory=TextDataConfig)
    generator: CatalogueGeneratorConfig = field(default_factory=CatalogueGeneratorConfig)
    model: TextModelConfig = field(default_factory=lambda: TextModelConfig(max_len=32))  # titles: ~10-20 tokens
    train: TrainConfig = field(default_factory=default_train)
    init: InitConfig = field(default_factory=default_init)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: TextEvalConfig = field(default_factory=TextEvalConfig)


def generate(cfg: CategorizeConfig) -> list:
    """The embedded catalogue as the core's labelled rows (text, label, group = product cluster)."""
    from guimo.data.catalogue import generate_catalogue
    from guimo.data.intents import Labelled

    g = cfg.generator
    return [Labelled(r.title, r.category, r.group) for r in generate_catalogue(g.products, seed=g.seed, max_offers=g.max_offers)]


def with_source_fields(data: TextDataConfig) -> TextDataConfig:
    """``data`` with PriceRunner's columns filled in where the path is PriceRunner and a field is at its default.

    A folder holding ``pricerunner_aggregate.csv`` becomes the file itself (the core reads a folder as
    train.csv + test.csv).
    """
    if data.path is None or not is_pricerunner(data.path):
        return data
    defaults = TextDataConfig()
    changes: dict[str, Any] = {k: v for k, v in PRICERUNNER_FIELDS.items() if getattr(data, k) == getattr(defaults, k)}
    if Path(data.path).is_dir():
        changes["path"] = str(Path(data.path) / PRICERUNNER_FILE)
    return dataclasses.replace(data, **changes)


class CategorizeScenario:
    """The text classification core with the catalogue's data sources (composition: every other
    stage and attribute is the core's)."""

    def __init__(self) -> None:
        self.core = TextClassScenario(
            name="categorize",
            summary="product titles to categories: fine-tuned MiniLM + calibrated head vs TF-IDF+SVM, frozen MiniLM+LR "
                    "(default: generated catalogue; PriceRunner recognised)",
            config_cls=CategorizeConfig,
            generate=generate,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.core, name)

    def collect(self, ctx) -> dict[str, Any]:
        info = self.core.collect(_with_source_fields(ctx))
        if ctx.cfg.data.path is not None and is_pricerunner(ctx.cfg.data.path):
            info["columns"] = {k: getattr(with_source_fields(ctx.cfg.data), k) for k in PRICERUNNER_FIELDS}
        return info

    def preprocess(self, ctx) -> dict[str, Any]:
        return self.core.preprocess(_with_source_fields(ctx))  # so its summary knows PriceRunner is grouped


def _with_source_fields(ctx):
    """``ctx`` with ``with_source_fields`` applied to its config (the run's manifest keeps the user's)."""
    data = with_source_fields(ctx.cfg.data)
    return ctx if data is ctx.cfg.data else dataclasses.replace(ctx, cfg=dataclasses.replace(ctx.cfg, data=data))


SCENARIO = CategorizeScenario()
