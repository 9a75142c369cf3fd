"""Unit economics from measured numbers plus the editable price table, never from guesses alone.

Every result is a ``Figure`` that names the measurement it comes from (a run's training wall
time, a row of the server's load benchmark, a run's NDCG) and the price-table entries it assumes,
so a reader can change either and see why the number moves.

Throughput file (what ``bench/serve_load.py`` writes to ``bench/results/serve_load.json``): a JSON
object with a ``rows`` list (or a bare list of rows); each row has ``concurrency`` (int),
``batching`` (bool), ``requests_per_s`` (measured completed requests per second) and the latency
percentiles ``p50_ms``, ``p95_ms``, ``p99_ms`` (or a ``latency_ms`` object with keys p50/p95/p99).
Optional: a row's ``model`` (the scenario it served: lm, recommend, ...; a file may hold several)
and top-level ``scenario`` or ``meta`` (command, date, machine), kept as metadata.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from guimo.errors import GuimoError
from guimo.scale.prices import Prices


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    measured: str = ""  # the measurement it comes from ("" = none: a pure assumption)
    assumed: str = ""  # the price-table entries it uses ("" = none)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "measured": self.measured, "assumed": self.assumed}


# -- training ----------------------------------------------------------------------------------


def training_cost(label: str, seconds: float, prices: Prices, *, source: str = "") -> list[Figure]:
    """Rent (and energy) of one training run from its measured wall time."""
    if seconds < 0:
        raise GuimoError(f"{label}: negative training time {seconds}")
    hw, en = prices.hardware, prices.energy
    hours = seconds / 3600.0
    rent = hours * hw.train_per_hour
    kwh = hours * (hw.train_cpu_cores * en.cpu_core_watts + hw.train_gpus * en.gpu_watts) * en.pue / 1000.0
    measured = f"train wall time {seconds:,.1f} s{f' ({source})' if source else ''}"
    rent_assumed = _hw(prices, "train")
    energy_assumed = _cite(prices, "energy.cpu_core_watts", "energy.gpu_watts", "energy.pue", "energy.per_kwh")
    total = rent + (0.0 if en.included_in_hardware else kwh * en.per_kwh)
    return [
        Figure(f"training rent: {label}", rent, prices.currency, measured, rent_assumed),
        Figure(f"training energy: {label}", kwh, "kWh", measured, _cite(prices, "energy.cpu_core_watts", "energy.gpu_watts", "energy.pue")),
        Figure(f"training cost: {label}", total, prices.currency, measured,
               rent_assumed + ("" if en.included_in_hardware else "; " + energy_assumed) + "; " + _cite(prices, "energy.included_in_hardware")),
    ]


def hardware_mismatch(devices: list[str | None], prices: Prices) -> str | None:
    """A warning when runs trained on GPUs (their manifests say where) and the price table rents none for training,
    or the reverse: every training cost would then price the wrong machine. ``None`` entries (runs older than
    that record) are left out."""
    known = sorted({d for d in devices if d})
    on_gpu = any(d.startswith("cuda") for d in known)
    gpus = prices.hardware.train_gpus
    if on_gpu and gpus == 0:
        return (f"The runs trained on {', '.join(known)}, but the price table rents no GPU for a training run "
                "([hardware] train_gpus = 0): set train_gpus and gpu_per_hour (--prices FILE) for these costs to mean anything.")
    if known and not on_gpu and gpus > 0:
        return (f"The runs trained on the CPU, but the price table rents {gpus} GPU(s) per training run ([hardware] train_gpus): "
                "these costs include GPUs the runs did not use.")
    return None


def optimal_run_cost(compute_flops: float, flops_per_s: float, prices: Prices, *, measured: str, label: str) -> list[Figure]:
    """Cost of a run of ``compute_flops`` at the measured training throughput ``flops_per_s``."""
    if flops_per_s <= 0:
        raise GuimoError("measured training throughput must be positive to price a planned run")
    seconds = compute_flops / flops_per_s
    rent = seconds / 3600.0 * prices.hardware.train_per_hour
    assumed = _hw(prices, "train")
    return [
        Figure(f"{label}: training time on the measured machine", seconds / 3600.0, "hours",
               f"{measured}; achieved {flops_per_s:.3g} FLOP/s", ""),
        Figure(f"{label}: training rent", rent, prices.currency, f"{measured}; achieved {flops_per_s:.3g} FLOP/s", assumed),
    ]


# -- serving -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRow:
    concurrency: int
    batching: bool
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    model: str | None = None  # which model kind the row measured ("lm", "recommend"), when the file says


def load_throughput(path: str | Path) -> tuple[list[LoadRow], dict[str, Any]]:
    """Rows of the server's load benchmark and its top-level metadata; bad rows name file and row."""
    from guimo.io import read_json

    path = Path(path)
    data = read_json(path)
    meta: dict[str, Any] = {}
    if isinstance(data, dict):
        meta = {k: v for k, v in data.items() if k != "rows"}
        data = data.get("rows")
    if not isinstance(data, list) or not data:
        raise GuimoError(f"{path}: expected a non-empty list of rows (or an object with 'rows')")
    rows = []
    for i, r in enumerate(data):
        if not isinstance(r, dict):
            raise GuimoError(f"{path}: row {i} is not an object")
        lat = r.get("latency_ms") if isinstance(r.get("latency_ms"), dict) else {}
        try:
            row = LoadRow(
                concurrency=int(r["concurrency"]),
                batching=bool(r["batching"]),
                requests_per_s=float(r["requests_per_s"]),
                p50_ms=float(r.get("p50_ms", lat.get("p50"))),
                p95_ms=float(r.get("p95_ms", lat.get("p95"))),
                p99_ms=float(r.get("p99_ms", lat.get("p99"))),
                model=str(r["model"]) if r.get("model") is not None else None,
            )
        except KeyError as e:
            raise GuimoError(f"{path}: row {i} lacks {e.args[0]!r} (need concurrency, batching, requests_per_s, p50_ms, p95_ms, p99_ms)") from None
        except (TypeError, ValueError):
            raise GuimoError(f"{path}: row {i} has a missing or non-numeric field: {r}") from None
        if row.requests_per_s <= 0 or not math.isfinite(row.requests_per_s):
            raise GuimoError(f"{path}: row {i} has requests_per_s {row.requests_per_s}; must be positive")
        rows.append(row)
    return rows, meta


def rows_for(rows: Sequence[LoadRow], scenario: str) -> list[LoadRow]:
    """The rows that measured ``scenario``; all rows when the file does not say which model each served."""
    kinds = {r.model for r in rows}
    if kinds <= {None}:
        return list(rows)
    chosen = [r for r in rows if r.model == scenario]
    if not chosen:
        raise GuimoError(f"the throughput file has no rows for '{scenario}' (it has: {', '.join(sorted(k for k in kinds if k))}); pass --scenario")
    return chosen


def cost_per_1k(per_hour: float, requests_per_s: float) -> float:
    """$ per 1,000 requests when a replica costing ``per_hour`` serves ``requests_per_s``."""
    return per_hour / (requests_per_s * 3600.0) * 1000.0


def serving_costs(rows: Sequence[LoadRow], prices: Prices, *, source: str) -> list[Figure]:
    """Cost per 1,000 requests at each measured load point (one replica, fully paid)."""
    assumed = _hw(prices, "serve")
    out = []
    for r in sorted(rows, key=lambda r: (r.batching, r.concurrency)):
        out.append(Figure(
            f"serving cost per 1,000 requests, batching {'on' if r.batching else 'off'}, concurrency {r.concurrency}",
            cost_per_1k(prices.hardware.serve_per_hour, r.requests_per_s), prices.currency,
            f"{r.requests_per_s:.2f} req/s, p99 {r.p99_ms:.0f} ms ({source})", assumed))
    return out


def replicas_for(rows: Sequence[LoadRow], prices: Prices, *, traffic_rps: float, p99_ms: float, source: str) -> list[Figure]:
    """Replicas needed for ``traffic_rps`` with p99 <= ``p99_ms``: the best measured load point that meets the target."""
    if traffic_rps <= 0 or p99_ms <= 0:
        raise GuimoError("traffic and p99 target must be positive")
    ok = [r for r in rows if r.p99_ms <= p99_ms]
    if not ok:
        best_p99 = min(r.p99_ms for r in rows)
        raise GuimoError(f"no measured load point meets p99 <= {p99_ms:g} ms (best measured p99 is {best_p99:.0f} ms in {source})")
    best = max(ok, key=lambda r: r.requests_per_s)
    n = math.ceil(traffic_rps / best.requests_per_s)
    per_hour = n * prices.hardware.serve_per_hour
    measured = f"best point under the p99 target: {best.requests_per_s:.2f} req/s at concurrency {best.concurrency}, batching {'on' if best.batching else 'off'}, p99 {best.p99_ms:.0f} ms ({source})"
    assumed = _hw(prices, "serve")
    return [
        Figure(f"replicas for {traffic_rps:g} req/s at p99 <= {p99_ms:g} ms", n, "replicas", measured, ""),
        Figure(f"serving cost per hour at {traffic_rps:g} req/s", per_hour, f"{prices.currency}/h", measured, assumed),
        Figure(f"serving cost per 1,000 requests at {traffic_rps:g} req/s", per_hour / (traffic_rps * 3.6), prices.currency, measured, assumed),
    ]


# -- the three business models -----------------------------------------------------------------


def public_cloud(capacity_rps: float, prices: Prices, *, scenario: str, measured: str) -> list[Figure]:
    """Gross margin vs utilisation and break-even traffic when selling requests at the table's price."""
    price = prices.requests.request_price(scenario)
    per_hour = prices.hardware.serve_per_hour
    hw = _hw(prices, "serve")
    price_cite = prices.cite(f"requests.per_1k_requests.{scenario if scenario in prices.requests.per_1k_requests else 'default'}")
    out = []
    for u in prices.business.cloud.utilisations:
        cost = cost_per_1k(per_hour, u * capacity_rps)
        out.append(Figure(f"public cloud gross margin at {u:.0%} utilisation ({u * capacity_rps:.2f} req/s)",
                          (price - cost) / price if price > 0 else float("-inf"), "share of price",
                          f"capacity {capacity_rps:.2f} req/s ({measured})", f"{price_cite}; {hw}"))
    breakeven_rps = per_hour / (price * 3.6) if price > 0 else float("inf")
    out.append(Figure("public cloud break-even traffic per replica", breakeven_rps, "req/s", "", f"{price_cite}; {hw}"))
    out.append(Figure("public cloud break-even utilisation", breakeven_rps / capacity_rps, "share of capacity",
                      f"capacity {capacity_rps:.2f} req/s ({measured})", f"{price_cite}; {hw}"))
    return out


def ecommerce(ndcg_model: float, ndcg_baseline: float, cost_per_1k_requests: float, prices: Prices, *, measured: str, cost_source: str) -> list[Figure]:
    """Incremental orders and profit of the model's NDCG@10 gain over the popularity baseline.

    orders through recommendations scale with NDCG@10 by ``conversion_elasticity``:
    extra orders = sessions x conversion_rate x recommendation_share x elasticity x (NDCG_model / NDCG_baseline - 1).
    """
    if ndcg_baseline <= 0:
        raise GuimoError("the baseline NDCG@10 must be positive to compute a relative gain")
    e = prices.business.ecommerce
    gain = ndcg_model / ndcg_baseline - 1.0
    orders = e.sessions * e.conversion_rate * e.recommendation_share * e.conversion_elasticity * gain
    revenue = orders * e.average_order_value
    profit = revenue * e.gross_margin
    inference = e.sessions * e.requests_per_session / 1000.0 * cost_per_1k_requests
    m = f"NDCG@10 {ndcg_model:.4f} vs popularity {ndcg_baseline:.4f} ({measured})"
    a_orders = _cite(prices, "business.ecommerce.sessions", "business.ecommerce.conversion_rate", "business.ecommerce.recommendation_share", "business.ecommerce.conversion_elasticity")
    per = f"per {e.sessions:,.0f} sessions"
    return [
        Figure("e-commerce relative NDCG@10 gain over popularity", gain, "share", m, ""),
        Figure(f"e-commerce incremental orders {per}", orders, "orders", m, a_orders),
        Figure(f"e-commerce incremental revenue {per}", revenue, prices.currency, m, a_orders + "; " + prices.cite("business.ecommerce.average_order_value")),
        Figure(f"e-commerce incremental gross profit {per}", profit, prices.currency, m,
               a_orders + "; " + _cite(prices, "business.ecommerce.average_order_value", "business.ecommerce.gross_margin")),
        Figure(f"e-commerce inference cost {per}", inference, prices.currency, cost_source, prices.cite("business.ecommerce.requests_per_session")),
        Figure(f"e-commerce net gain {per}", profit - inference, prices.currency, f"{m}; {cost_source}", "all of the above"),
    ]


@dataclass(frozen=True)
class DeviceCandidate:
    """A model that might ship on the device, sized from its config (no training needed)."""

    name: str
    params: float  # total parameters: what the fit's quality(N) takes
    int8_bytes: float  # tensors of its int8 file (guimo.optimize.quantize.int8_file_bytes): embeddings stay float32
    macs_per_token: float  # forward multiply-adds per generated token at its full context (flops_per_token / 6)


def device_fit(c: DeviceCandidate, prices: Prices) -> tuple[float, float, bool]:
    """(memory it needs in MB, latency per token in ms, whether both fit the device's budgets).

    Memory: the int8 file times the overhead factor (runtime, activations, KV cache). Latency: its
    multiply-adds per token at the device's effective int8 rate."""
    d = prices.business.device
    memory_mb = c.int8_bytes * d.memory_overhead / 1e6
    latency_ms = c.macs_per_token / (d.int8_gops * 1e9) * 1000.0 if d.int8_gops > 0 else math.inf
    return memory_mb, latency_ms, memory_mb <= d.memory_mb and latency_ms <= d.latency_ms_per_token


def consumer_device(prices: Prices, candidates: Sequence[DeviceCandidate], *, quality=None, quality_source: str = "scaling-law fit",
                    cloud_cost_per_1k: float, cost_source: str) -> list[Figure]:
    """The largest candidate that fits the device after int8, what it needs, its expected loss, and cloud-fallback cost.

    ``quality``: a function N (total parameters) -> expected loss (from the fit), or None.
    """
    mem_cite = _cite(prices, "business.device.memory_mb", "business.device.memory_overhead")
    lat_cite = _cite(prices, "business.device.latency_ms_per_token", "business.device.int8_gops")
    sized = "int8 file size from the model config (guimo.optimize.quantize layout); multiply-adds per token from the config"
    fitting = [c for c in candidates if device_fit(c, prices)[2]]
    out: list[Figure] = []
    if fitting:
        best = max(fitting, key=lambda c: c.params)
        memory_mb, latency_ms, _ = device_fit(best, prices)
        out += [Figure(f"largest model on the device: {best.name}", best.params, "parameters", sized, f"{mem_cite}; {lat_cite}"),
                Figure(f"device memory for {best.name} (int8 file x overhead)", memory_mb, "MB", f"int8 file {best.int8_bytes / 1e6:.2f} MB", mem_cite),
                Figure(f"device latency per token of {best.name}", latency_ms, "ms", f"{best.macs_per_token:,.0f} multiply-adds per token", lat_cite)]
        if quality is not None:
            out.append(Figure(f"expected loss of {best.name} on the device", float(quality(best.params)), "nats/token", quality_source,
                              "int8 assumed lossless (optimize.json's relative_change measures it for a trained run)"))
    else:
        out.append(Figure("largest model on the device: none of the candidates fits", 0, "parameters", sized, f"{mem_cite}; {lat_cite}"))
    too_big = [c for c in candidates if c.params > max((f.params for f in fitting), default=0)]
    if too_big:  # the next size up, and which budget stops it
        nxt = min(too_big, key=lambda c: c.params)
        memory_mb, latency_ms, _ = device_fit(nxt, prices)
        d = prices.business.device
        stops = []
        if memory_mb > d.memory_mb:
            stops.append(f"memory {memory_mb:.1f} > {d.memory_mb:g} MB")
        if latency_ms > d.latency_ms_per_token:
            stops.append(f"latency {latency_ms:.1f} > {d.latency_ms_per_token:g} ms")
        out.append(Figure(f"next size up, {nxt.name}: does not fit ({'; '.join(stops)})", nxt.params, "parameters", sized, f"{mem_cite}; {lat_cite}"))
    d = prices.business.device
    fallback = d.requests_per_day * d.lifetime_days * d.cloud_fallback_rate / 1000.0 * cloud_cost_per_1k
    out.append(Figure("cloud fallback cost per device over its life", fallback, prices.currency, cost_source,
                      _cite(prices, "business.device.requests_per_day", "business.device.lifetime_days", "business.device.cloud_fallback_rate")))
    return out


# -- rendering ---------------------------------------------------------------------------------


def figures_markdown(figures: Sequence[Figure]) -> str:
    lines = ["| figure | value | unit | from measurement | from assumption |", "| --- | ---: | --- | --- | --- |"]
    for f in figures:
        lines.append(f"| {f.name} | {format_value(f.value)} | {f.unit} | {f.measured or '—'} | {f.assumed or '—'} |")
    return "\n".join(lines) + "\n"


def format_value(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return f"{int(v):,}"
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _hw(prices: Prices, role: str) -> str:
    """The hardware entries behind a machine-hour of ``role`` (train or serve); GPU prices only when GPUs are used."""
    keys = [f"hardware.{role}_cpu_cores", "hardware.cpu_core_per_hour", f"hardware.{role}_gpus"]
    if getattr(prices.hardware, f"{role}_gpus"):
        keys.append("hardware.gpu_per_hour")
    return _cite(prices, *keys)


def _cite(prices: Prices, *keys: str) -> str:
    return ", ".join(prices.cite(k) for k in keys)
