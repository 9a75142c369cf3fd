"""A small real training run through `guimo.train.loop.fit`, as a separate process.

The resume and DDP tests start it with ``python tests/train/worker.py OUT ...`` or under
``torchrun --nproc_per_node=2``. The task is LM-like: next-token prediction on a synthetic
Markov-chain corpus (seeded, so every process and every restart sees the same data).
With ``GUIMO_TEST_HANG_AT=N`` in the environment the run stops making progress after step N
(and writes ``OUT/hanging``), so a test can SIGKILL it at a known point mid-training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from guimo.models.transformer import Transformer, TransformerConfig
from guimo.scenarios.lm import TokenBlocks, lm_loss
from guimo.train.config import TrainConfig

VOCAB, BLOCK = 32, 16


def corpus(n_tokens: int, seed: int = 0) -> np.ndarray:
    """Tokens from a sparse random Markov chain: learnable structure, nothing to download."""
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.full(VOCAB, 0.1), size=VOCAB)  # next-token distributions
    out = np.empty(n_tokens, dtype=np.int64)
    out[0] = 0
    for i in range(1, n_tokens):
        out[i] = rng.choice(VOCAB, p=table[out[i - 1]])
    return out


def lm_loss_any_dtype(model, batch) -> torch.Tensor:
    """Next-token cross-entropy in the model's own dtype.

    The scenario's ``lm_loss`` upcasts logits to float32 (right for bf16 training); a float64 model
    in the numeric-identity tests must stay float64 all the way through.
    """
    logits = model(batch["x"])  # (B, T, V)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["y"].reshape(-1))


def model_config(dropout: float) -> TransformerConfig:
    return TransformerConfig(vocab_size=VOCAB, max_len=BLOCK, n_layer=2, n_head=2, d_model=32, dropout=dropout)


def train_config(args) -> TrainConfig:
    return TrainConfig(
        max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum, lr=3e-3, warmup_steps=5,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, log_every=1, device=args.device,
        max_time_s=args.max_time_s, select_window=args.select_window,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--max-steps", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--eval-every", type=int, default=10)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="float64: the numeric-identity tests")
    p.add_argument("--max-time-s", type=float, default=None)
    p.add_argument("--select-window", type=int, default=1)
    args = p.parse_args(argv)

    from guimo.train import distributed
    from guimo.train.loop import fit

    tokens = corpus(6000)
    train, val = TokenBlocks(tokens[:5000], BLOCK), TokenBlocks(tokens[5000:], BLOCK)
    hang_at = int(os.environ.get("GUIMO_TEST_HANG_AT", "0"))
    loss_fn = lm_loss if args.dtype == "float32" else lm_loss_any_dtype

    def evaluate(model) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            device = next(model.parameters()).device
            loss = loss_fn(model, {k: v.to(device) for k, v in val.batch(list(range(len(val)))).items()}).item()
        return {"loss": loss}

    def progress(step: int, info: dict) -> None:
        if step == hang_at:
            (args.out / "hanging").write_text(str(step))
            time.sleep(600)  # the test SIGKILLs us here

    torch.manual_seed(args.seed)
    model = Transformer(model_config(args.dropout)).to(getattr(torch, args.dtype))
    result = fit(model, train, loss_fn, train_config(args), out_dir=args.out, seed=args.seed, evaluate=evaluate, progress=progress)
    dist = distributed.current()
    (args.out / f"rank-{dist.rank}.json").write_text(json.dumps({"steps": result.steps, "max_steps": result.max_steps}))
    if dist.is_main:
        from safetensors.torch import save_file

        from guimo.train.checkpoint import model_state

        save_file({k: v.contiguous() for k, v in model_state(model).items()}, str(args.out / "final.safetensors"))
        (args.out / "result.json").write_text(json.dumps({"steps": result.steps, "world_size": dist.world_size, "best_step": result.best_step,
                                                          "max_steps": result.max_steps}))
    if dist.enabled:
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
