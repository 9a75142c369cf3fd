"""Serve a finished `faq` run: ``answer(texts)`` over its FAQ with its fine-tuned encoder and threshold.

Imports no training code (the server loads it). ``guimo predict RUN --text "..."`` and the server
call ``answer``; ``classify`` is not offered (an FAQ run answers, it does not label).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from guimo.errors import GuimoError

MAX_TEXT_CHARS = 10_000


class FaqPredictor:
    def __init__(self, answerer) -> None:
        self.answerer = answerer

    @classmethod
    def from_run(cls, run, device: str = "cpu", batch_size: int = 64) -> "FaqPredictor":
        from guimo.faq.answerer import AnswerSettings, FaqAnswerer
        from guimo.faq.encoder import FaqModelConfig, RunEncoder
        from guimo.io import read_json
        from guimo.models.load import load_run_model
        from guimo.models.transformer import Transformer

        path = Path(run.path)
        for need in ("model_config.json", "tokenizer.json", "faq_settings.json", "data/entries.jsonl"):
            if not (path / need).exists():
                raise GuimoError(f"{path / need}: not found; is {path} a finished faq run?")
        model = load_run_model(run, FaqModelConfig, Transformer, device=device)
        settings = read_json(path / "faq_settings.json")
        from guimo.data.faq import FaqEntry
        from guimo.io import iter_jsonl

        entries = [FaqEntry(r["id"], r["question"], r["answer"], r["group"]) for _, r in iter_jsonl(path / "data" / "entries.jsonl")]
        encoder = RunEncoder(model, path / "tokenizer.json", model.cfg.max_len)
        return cls(FaqAnswerer(entries, encoder, AnswerSettings(**settings), batch_size=batch_size))

    def answer(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Per text ``{"answer", "question", "id", "score", "no_answer"}`` (see ``FaqAnswerer.answer``)."""
        if isinstance(texts, str):
            raise TypeError("pass a list of texts; wrap a single string in a list")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise GuimoError(f"input {i}: expected a non-empty string")
            if len(t) > MAX_TEXT_CHARS:
                raise GuimoError(f"input {i}: {len(t)} characters; at most {MAX_TEXT_CHARS}")
        return self.answerer.answer(list(texts))

    def embed(self, texts: Sequence[str]):
        """(N, C) unit-norm embeddings of ``texts`` with the run's encoder (for /v1/embeddings)."""
        return self.answerer.encoder.encode(list(texts))
