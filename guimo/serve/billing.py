"""Bills from the price table (guimo/prices.toml, section [requests]): sums over usage events.

A request costs its scenario's price per 1,000 requests plus, for token-metered endpoints, its
tokens at the per-1,000-token prices (prompt and completion tokens for completions, input tokens
for embeddings), or, for unit-metered endpoints ([requests.per_1k_units]: search queries, collection
documents), its units at that endpoint's price. Nothing is stored: the bill is recomputed from the ledger every time.
"""

from __future__ import annotations

from dataclasses import dataclass

from guimo.serve.ledger import UsageRow


@dataclass(frozen=True)
class BillLine:
    row: UsageRow
    request_cost: float
    token_cost: float

    @property
    def total(self) -> float:
        return self.request_cost + self.token_cost


def price_lines(rows: list[UsageRow], prices) -> list[BillLine]:
    """One bill line per usage row; ``prices`` is a ``guimo.scale.prices.Prices``."""
    per_tok = prices.requests.per_1k_tokens
    lines = []
    for r in rows:
        request_cost = r.requests / 1000.0 * prices.requests.request_price(r.scenario)
        if r.endpoint == "completions":
            token_cost = (r.prompt_tokens * per_tok.get("prompt", 0.0) + r.completion_tokens * per_tok.get("completion", 0.0)) / 1000.0
        elif r.endpoint == "embeddings":
            token_cost = r.prompt_tokens * per_tok.get("embedding", 0.0) / 1000.0
        elif r.endpoint in prices.requests.per_1k_units:  # search queries, collection documents
            token_cost = r.units * prices.requests.per_1k_units[r.endpoint] / 1000.0
        else:
            token_cost = 0.0
        lines.append(BillLine(r, request_cost, token_cost))
    return lines


def load_prices(path: str | None = None):
    from guimo.scale.prices import load_prices as _load

    return _load(path)
