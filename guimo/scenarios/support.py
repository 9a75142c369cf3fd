"""`support` — customer-service intents with out-of-scope rejection.

An e-commerce help desk routes each incoming query to an intent (order status, refund, password
reset, ...) and must say "not something I handle" for the rest instead of guessing. The model is
the pretrained MiniLM encoder fine-tuned with a linear head (`guimo.scenarios.textclass`, shared
with `categorize`); its confidences are temperature-calibrated on validation data and a query
whose calibrated confidence falls below a threshold chosen there is flagged ``out_of_scope``.

Data: the embedded generator (`guimo.data.intents`: 14 intents from paraphrase templates, plus
out-of-scope queries; test queries use templates training never saw), or ``--data FILE`` with
``text,label`` columns (BANKING77's ``text,category`` is recognised; a folder with train.csv and
test.csv is read as both). A label named ``out_of_scope`` or ``oos`` marks out-of-scope rows.
Served through ``/v1/classifications`` and ``guimo predict``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from guimo.data.intents import IntentGeneratorConfig
from guimo.scenarios.base import InitConfig, OptimizeConfig
from guimo.scenarios.textclass import (TextClassScenario, TextDataConfig, TextEvalConfig, TextModelConfig, default_init,
                                       default_train)
from guimo.train.config import TrainConfig


@dataclass
class SupportConfig:
    seed: int = field(default=0, metadata={"help": "seeds the split, the head's init, data order and dropout"})
    data: TextDataConfig = field(default_factory=TextDataConfig)
    generator: IntentGeneratorConfig = field(default_factory=IntentGeneratorConfig)
    model: TextModelConfig = field(default_factory=lambda: TextModelConfig(max_len=32))
    train: TrainConfig = field(default_factory=default_train)
    init: InitConfig = field(default_factory=default_init)
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(search_width=False))
    eval: TextEvalConfig = field(default_factory=TextEvalConfig)


def generate(cfg: SupportConfig):
    from guimo.data.intents import generate_queries

    return generate_queries(cfg.generator)


SCENARIO = TextClassScenario(
    name="support",
    summary="customer-service intents with out-of-scope rejection: fine-tuned MiniLM + calibrated head vs TF-IDF+SVM, "
            "frozen MiniLM+LR (default: generated e-commerce queries)",
    config_cls=SupportConfig,
    generate=generate,
)
