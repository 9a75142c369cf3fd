"""The price table (guimo/prices.toml): typed, validated, and merged over the shipped defaults.

One definition for everyone who prices things: `guimo economics`, the scale report and the
server's billing read the same dataclasses. A user file only needs the keys it changes; an
unknown key, a wrong type or a negative price is refused with the file named, never ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guimo.errors import GuimoError, where

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "prices.toml"


def _nonneg(obj: Any, *names: str) -> None:
    for n in names:
        if getattr(obj, n) < 0:
            raise ValueError(f"{n} must be >= 0, got {getattr(obj, n)}")


@dataclass
class Hardware:
    cpu_core_per_hour: float = field(metadata={"help": "$ per hour for one CPU core"})
    gpu_per_hour: float = field(metadata={"help": "$ per hour for one GPU"})
    train_cpu_cores: int = field(metadata={"help": "cores one training run occupies"})
    train_gpus: int = field(metadata={"help": "GPUs one training run occupies"})
    serve_cpu_cores: int = field(metadata={"help": "cores one serving replica occupies"})
    serve_gpus: int = field(metadata={"help": "GPUs one serving replica occupies"})

    def __post_init__(self) -> None:
        _nonneg(self, "cpu_core_per_hour", "gpu_per_hour", "train_cpu_cores", "train_gpus", "serve_cpu_cores", "serve_gpus")

    @property
    def train_per_hour(self) -> float:
        return self.train_cpu_cores * self.cpu_core_per_hour + self.train_gpus * self.gpu_per_hour

    @property
    def serve_per_hour(self) -> float:
        return self.serve_cpu_cores * self.cpu_core_per_hour + self.serve_gpus * self.gpu_per_hour


@dataclass
class Energy:
    per_kwh: float = field(metadata={"help": "$ per kWh"})
    cpu_core_watts: float = field(metadata={"help": "average W of one busy core"})
    gpu_watts: float = field(metadata={"help": "average W of one busy GPU"})
    pue: float = field(metadata={"help": "data-centre overhead factor on IT power (>= 1)"})
    included_in_hardware: bool = field(metadata={"help": "true: the hourly rent pays for power; energy is shown, not added"})

    def __post_init__(self) -> None:
        _nonneg(self, "per_kwh", "cpu_core_watts", "gpu_watts")
        if self.pue < 1:
            raise ValueError(f"pue must be >= 1, got {self.pue}")


@dataclass
class Requests:
    per_1k_requests: dict[str, float] = field(metadata={"help": "$ per 1,000 requests by scenario; 'default' for others"})
    per_1k_tokens: dict[str, float] = field(metadata={"help": "$ per 1,000 tokens by kind: prompt, completion, embedding"})
    per_1k_units: dict[str, float] = field(default_factory=dict, metadata={
        "help": "$ per 1,000 units by server endpoint: search (queries), collections (documents)"})

    def __post_init__(self) -> None:
        for table_name in ("per_1k_requests", "per_1k_tokens", "per_1k_units"):
            for k, v in getattr(self, table_name).items():
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError(f"{table_name}.{k} must be a number >= 0, got {v!r}")
        if "default" not in self.per_1k_requests:
            raise ValueError("per_1k_requests needs a 'default' price")

    def request_price(self, scenario: str) -> float:
        """$ per 1,000 requests of ``scenario`` (the default price when it has none of its own)."""
        return float(self.per_1k_requests.get(scenario, self.per_1k_requests["default"]))


@dataclass
class Cloud:
    utilisations: list[float] = field(metadata={"help": "shares of measured capacity to tabulate"})

    def __post_init__(self) -> None:
        if not self.utilisations or any(not 0 < u <= 1 for u in self.utilisations):
            raise ValueError("utilisations must be a non-empty list of numbers in (0, 1]")


@dataclass
class Ecommerce:
    sessions: float = field(metadata={"help": "sessions the figures are quoted for"})
    conversion_rate: float = field(metadata={"help": "share of sessions with an order"})
    recommendation_share: float = field(metadata={"help": "share of orders through a recommendation"})
    conversion_elasticity: float = field(metadata={"help": "relative change in those orders per relative change in NDCG@10"})
    average_order_value: float = field(metadata={"help": "$ per order"})
    gross_margin: float = field(metadata={"help": "share of order value kept"})
    requests_per_session: float = field(metadata={"help": "recommendation calls per session"})

    def __post_init__(self) -> None:
        _nonneg(self, "sessions", "conversion_elasticity", "average_order_value", "requests_per_session")
        for n in ("conversion_rate", "recommendation_share", "gross_margin"):
            if not 0 <= getattr(self, n) <= 1:
                raise ValueError(f"{n} must be in [0, 1], got {getattr(self, n)}")


@dataclass
class Device:
    memory_mb: float = field(metadata={"help": "memory the model may take on the device"})
    latency_ms_per_token: float = field(metadata={"help": "time budget per generated token"})
    int8_gops: float = field(metadata={"help": "effective int8 multiply-adds per second, in 1e9"})
    memory_overhead: float = field(metadata={"help": "factor over the int8 file (runtime, activations, KV cache)"})
    requests_per_day: float = field(metadata={"help": "requests one device makes per day"})
    cloud_fallback_rate: float = field(metadata={"help": "share of requests sent to the cloud"})
    lifetime_days: float = field(metadata={"help": "service life of a device"})

    def __post_init__(self) -> None:
        _nonneg(self, "memory_mb", "latency_ms_per_token", "int8_gops", "requests_per_day", "lifetime_days")
        if self.memory_overhead < 1:
            raise ValueError(f"memory_overhead must be >= 1, got {self.memory_overhead}")
        if not 0 <= self.cloud_fallback_rate <= 1:
            raise ValueError(f"cloud_fallback_rate must be in [0, 1], got {self.cloud_fallback_rate}")


@dataclass
class Labels:
    per_example: float = field(metadata={"help": "$ per labelled training example (what 2x and 4x the labels of a classifier cost)"})

    def __post_init__(self) -> None:
        _nonneg(self, "per_example")


@dataclass
class Business:
    cloud: Cloud
    ecommerce: Ecommerce
    device: Device


@dataclass
class Prices:
    currency: str
    hardware: Hardware
    energy: Energy
    requests: Requests
    business: Business
    labels: Labels
    source: str = field(default=str(DEFAULT_PATH), metadata={"help": "the file(s) these prices came from"})

    def cite(self, dotted: str) -> str:
        """'[section] key = value (file)': how a report names an assumption."""
        *sections, key = dotted.split(".")
        obj: Any = self
        for s in sections:
            obj = getattr(obj, s)
        value = obj[key] if isinstance(obj, dict) else getattr(obj, key)
        if isinstance(value, bool):
            value = str(value).lower()  # as TOML spells it
        elif isinstance(value, (int, float)):
            value = f"{value:g}"
        return f"[{'.'.join(sections)}] {key} = {value}"


def load_prices(path: str | Path | None = None) -> Prices:
    """The shipped table, with ``path``'s values merged over it when given."""
    from guimo.config import from_dict

    data = _read_toml(DEFAULT_PATH)
    source = str(DEFAULT_PATH)
    if path is not None:
        data = _merge(data, _read_toml(Path(path)))
        source = f"{path} over {DEFAULT_PATH.name}"
    data["source"] = source
    try:
        return from_dict(Prices, data)
    except GuimoError as e:
        raise GuimoError(f"{path or DEFAULT_PATH}: bad price table: {e}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    if not path.is_file():
        raise GuimoError(f"{path}: price table not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise GuimoError(f"{path}: price table is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"at line (\d+)", str(e))
        raise GuimoError(f"{where(path, int(m.group(1)) if m else None)}: bad price table: {e}") from None


def _merge(base: dict, new: dict) -> dict:
    """Deep merge: tables merge key by key (price lists too), other values are replaced."""
    out = dict(base)
    for k, v in new.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
