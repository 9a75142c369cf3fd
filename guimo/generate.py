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
    _check(temperature, top_p)
    device = next(model.parameters()).device
    gen = _generator(device, seed)
    max_len = model.cfg.max_len
    history = list(prompt_ids)[-(max_len - 1) :]
    cache = model.new_cache(1)
    logits = model(torch.tensor([history], device=device), cache=cache)[:, -1]  # (1, V)
    for i in range(max_new_tokens):
        nxt = _pick(logits, temperature, top_k, top_p, gen)
        yield nxt
        if i == max_new_tokens - 1:
            return  # no forward pass for a token nobody will sample
        history.append(nxt)
        if cache.pos >= max_len:  # window full: re-encode the recent half
            history = history[-(max_len // 2) :]
            cache = model.new_cache(1)
            logits = model(torch.tensor([history], device=device), cache=cache)[:, -1]
        else:
            logits = model(torch.tensor([[nxt]], device=device), cache=cache)[:, -1]


def _check(temperature: float, top_p: float) -> None:
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError("temperature must be >= 0 and top_p in (0, 1]")


def _generator(device, seed: int | None) -> torch.Generator:
    gen = torch.Generator(device=device)
    if seed is not None:
        gen.manual_seed(seed)
    else:
        gen.seed()
    return gen


def _pick(logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float, gen: torch.Generator) -> int:
    """The next token from logits (1, V): argmax at temperature 0, else a filtered sample."""
    if temperature == 0:
        return int(logits.argmax(-1))
    probs = torch.softmax(filter_logits(logits.float() / temperature, top_k, top_p), dim=-1)
    return int(torch.multinomial(probs, 1, generator=gen))


def batch_fits(prompt_lengths: list[int], max_new_tokens: list[int], max_len: int) -> bool:
    """Whether `sample_batch` can decode these rows together without sliding the context window."""
    longest = max(min(n, max_len - 1) for n in prompt_lengths)
    return longest + max(max_new_tokens) - 1 <= max_len


@torch.no_grad()
def sample_batch(
    model,
    prompts: list[list[int]],
    *,
    max_new_tokens: list[int],
    temperature: list[float],
    top_k: list[int | None],
    top_p: list[float],
    seeds: list[int | None],
    finished: list[bool] | None = None,
) -> Iterator[list[int | None]]:
    """Decode several prompts in lockstep with one batched KV cache; each step yields one token id
    per row (None for rows already done).

    Prompts are prefilled in groups of equal length (no padding inside a group), each into its
    right-aligned slot of the batch cache (left padding); padded slots are masked with ``key_mask`` and every row keeps its
    own ``positions``, so a row's tokens match `sample` with the same arguments (greedy decoding
    token for token; sampling too, each row drawing from its own seeded generator). The caller
    stops a row by setting ``finished[i] = True`` (end of text, a stop string, a client gone).
    Requires `batch_fits` (the window never slides here); callers fall back to `sample`.
    """
    for t, p in zip(temperature, top_p):
        _check(t, p)
    device = next(model.parameters()).device
    max_len = model.cfg.max_len
    history = [list(p)[-(max_len - 1) :] for p in prompts]
    if not batch_fits([len(h) for h in history], max_new_tokens, max_len):
        raise ValueError("prompts and max_new_tokens do not fit the context window together")
    B, L = len(history), max(len(h) for h in history)
    cache = model.new_cache(B)
    key_mask = torch.zeros(B, max_len, dtype=torch.bool, device=device)
    logits = None
    by_length: dict[int, list[int]] = {}
    for i, h in enumerate(history):
        by_length.setdefault(len(h), []).append(i)
    for n, rows in by_length.items():  # prefill prompts of equal length together: no padding, no masked queries
        part = model.new_cache(len(rows))
        out = model(torch.tensor([history[i] for i in rows], device=device), cache=part)[:, -1]  # (b, V)
        logits = out.new_empty(B, out.size(-1)) if logits is None else logits
        logits[rows] = out
        cache.k[:, rows, :, L - n : L] = part.k[:, :, :, :n]
        cache.v[:, rows, :, L - n : L] = part.v[:, :, :, :n]
        key_mask[rows, L - n : L] = True
    cache.pos = L
    positions = torch.tensor([[len(h)] for h in history], device=device)  # (B, 1): each row's next position
    gens = [_generator(device, s) for s in seeds]
    done = finished if finished is not None else [False] * B
    produced = [0] * B
    while True:
        step: list[int | None] = []
        greedy = logits.argmax(-1).tolist() if 0 in temperature else None  # one call for all rows, not one per row
        for i in range(B):
            if done[i] or produced[i] >= max_new_tokens[i]:
                done[i] = True
                step.append(None)
                continue
            step.append(greedy[i] if temperature[i] == 0 else _pick(logits[i : i + 1], temperature[i], top_k[i], top_p[i], gens[i]))
            produced[i] += 1
        if all(t is None for t in step):
            return
        yield step
        if all(done[i] or produced[i] >= max_new_tokens[i] for i in range(B)):
            return
        ids = torch.tensor([[t if t is not None else 0] for t in step], device=device)  # (B, 1)
        key_mask[:, cache.pos] = True
        logits = model(ids, key_mask=key_mask[:, : cache.pos + 1], positions=positions, cache=cache)[:, -1]
        positions = positions + 1
