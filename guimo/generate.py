"""Sampling from a causal transformer with a KV cache: temperature, top-k, top-p, seed.

Each new token costs one forward pass over one position (the cache holds the past keys and
values). When the context window fills, the cache is rebuilt from the most recent half window.
"""

from __future__ import annotations

from typing import Iterator

import torch


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float = 1.0) -> torch.Tensor:
    """Mask (to -inf) everything outside the top-k and outside the smallest nucleus of mass top_p."""
    if top_k is not None and 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1, None]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(dim=-1)
        drop = cum - probs > top_p  # keep the first token that crosses top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


@torch.no_grad()
def sample(
    model,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    seed: int | None = None,
) -> Iterator[int]:
    """Yield up to ``max_new_tokens`` token ids continuing ``prompt_ids`` (temperature 0 = greedy)."""
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError("temperature must be >= 0 and top_p in (0, 1]")
    device = next(model.parameters()).device
    gen = torch.Generator(device=device)
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    max_len = model.cfg.max_len
    history = list(prompt_ids)[-(max_len - 1) :]
    cache = model.new_cache(1)
    logits = model(torch.tensor([history], device=device), cache=cache)[:, -1]  # (1, V)
    for _ in range(max_new_tokens):
        if temperature == 0:
            nxt = int(logits.argmax(-1))
        else:
            probs = torch.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)
            nxt = int(torch.multinomial(probs, 1, generator=gen))
        yield nxt
        history.append(nxt)
        if cache.pos >= max_len:  # window full: re-encode the recent half
            history = history[-(max_len // 2) :]
            cache = model.new_cache(1)
            logits = model(torch.tensor([history], device=device), cache=cache)[:, -1]
        else:
            logits = model(torch.tensor([[nxt]], device=device), cache=cache)[:, -1]
