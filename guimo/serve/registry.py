"""Served models: run directories -> predictors, plus the batch function for each serve kind.

Which endpoints a model answers follows from its scenario's ``serve_kind`` (see ``ENDPOINTS``),
never from its name: a new scenario is served by giving it a ``serve_kind`` and a predictor.

Predictor contracts, by kind:
- completion: ``stream_batch(prompts, params, cancelled=...)`` yielding (row, piece) and setting
  ``last_batch``; ``count_tokens(text)``; optionally ``embed(texts) -> (vectors, token_counts)``.
- recommendation: ``recommend(histories, k=10, exclude_seen=True) -> [{"items", "scores", "unknown_items"}]``;
  ``unknown(history)``, ``unknown_message(unknown, total)`` and ``id_examples()`` name ids not in the catalogue.
- classification: ``classify(inputs) -> [{"label", "confidence", "out_of_scope", "scores": {label: probability}}]``
  (``confidence``: the calibrated top probability; both optional, read as max(scores) and False when absent);
  optionally ``embed`` and ``count_tokens`` (the encoder under the head), which adds /v1/embeddings.
- embedding: ``embed(texts) -> (vectors, token_counts)`` and ``count_tokens(text)``; served without a run
  from ``guimo serve --encoder NAME[=FOLDER]`` (``EncoderPredictor``) or from a run whose scenario has this kind.

Any kind whose predictor has ``embed`` also answers /v1/embeddings (see ``ServedModel.endpoints``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from guimo.errors import GuimoError

# serve_kind -> endpoints (names of routers under guimo.serve.api.routes)
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "completion": ("completions", "embeddings"),
    "recommendation": ("recommendations",),
    "classification": ("classifications", "embeddings"),
    "embedding": ("embeddings",),
    "assistant": ("assistant", "classifications"),  # NLU runs (issue #24): turns per tenant, and their intents as labels
}
PACKAGED_ENCODER = "all-minilm-l6-v2"  # `guimo serve --encoder all-minilm-l6-v2`: the encoder the 'text' extra ships


@dataclass
class ServedModel:
    name: str
    scenario: str
    kind: str
    predictor: Any
    path: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    batchers: dict[str, Any] = field(default_factory=dict)  # endpoint -> Batcher, once the app has started
    encoder_spec: str | None = None  # a text encoder: how a search collection names it (guimo.index.collection.load_encoder)

    @property
    def endpoints(self) -> tuple[str, ...]:
        eps = ENDPOINTS.get(self.kind, ())
        if "embeddings" in eps and not hasattr(self.predictor, "embed"):
            eps = tuple(e for e in eps if e != "embeddings")
        return eps


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """'PATH' or 'NAME=PATH' -> (name or None, path)."""
    if "=" in spec and not Path(spec).exists():
        name, path = spec.split("=", 1)
        return name, Path(path)
    return None, Path(spec)


def load_models(specs: list[str], device: str = "cpu") -> dict[str, ServedModel]:
    """Load each run directory's predictor; names default to the run directory's name."""
    from guimo import scenarios
    from guimo.pipeline.rundir import RunDir

    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, path = parse_spec(spec)
        run = RunDir.open(path)
        name = name or run.path.name
        if name in models:
            raise GuimoError(f"two runs would both be served as '{name}'; name one with NAME=PATH")
        scenario = scenarios.get(run.scenario)
        kind = getattr(scenario, "serve_kind", None)
        if kind not in ENDPOINTS:
            raise GuimoError(f"{path}: scenario '{run.scenario}' cannot be served (serve_kind {kind!r})")
        models[name] = ServedModel(name, run.scenario, kind, scenario.load_predictor(run, device=device), path=str(path),
                                   created=int(run.path.joinpath("manifest.json").stat().st_mtime),
                                   # an encoder run (the search scenario) can also back dense collections, by its served name
                                   encoder_spec=str(run.path.resolve()) if kind == "embedding" else None)
    return models


class EncoderPredictor:
    """A text encoder as a served model: ``embed`` for /v1/embeddings, ``encode`` for dense collections.

    Wraps ``guimo.models.text_encoder.TextEncoder``: unit-norm float32 vectors, and the token counts
    (after truncation, [CLS] and [SEP] included) that the ledger bills.
    """

    def __init__(self, encoder) -> None:
        self.encoder = encoder

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def count_tokens(self, text: str) -> int:
        return len(self.encoder.tokenizer.encode(text).ids)

    def encode(self, texts: list[str], batch_size: int = 32):
        return self.encoder.encode(texts, batch_size=batch_size)

    def embed(self, texts: list[str]) -> tuple[Any, list[int]]:
        counts = [len(e.ids) for e in self.encoder.tokenizer.encode_batch(list(texts))]
        return self.encoder.encode(list(texts)).numpy(), counts


def load_encoders(specs: list[str], device: str = "cpu") -> dict[str, ServedModel]:
    """``NAME`` (only ``all-minilm-l6-v2``: the packaged model) or ``NAME=FOLDER`` -> served text encoders.

    A FOLDER is a sentence-transformers folder (tokenizer.json and weights) or a run directory of a
    scenario whose predictor embeds (then it is served as that run, under NAME). Each served encoder
    also records its ``encoder_spec``, the string a dense search collection stores to name it; on
    the CPU the server's collections and /v1/embeddings share one loaded model.
    """
    models: dict[str, ServedModel] = {}
    for spec in specs:
        name, eq, folder = spec.partition("=")
        if not name or (eq and not folder):
            raise GuimoError(f"--encoder {spec!r}: give NAME or NAME=FOLDER")
        if name in models:
            raise GuimoError(f"two encoders would both be served as '{name}'")
        if not eq:
            if name != PACKAGED_ENCODER:
                raise GuimoError(f"--encoder {name}: unknown encoder; the packaged one is '{PACKAGED_ENCODER}', "
                                 "others are given as NAME=FOLDER (a sentence-transformers folder or a run directory)")
            from guimo.index.collection import DEFAULT_ENCODER

            collection_spec, path = DEFAULT_ENCODER, ""
        else:
            path = str(folder)
            if not Path(folder).is_dir():
                raise GuimoError(f"--encoder {spec}: {folder} is not a folder")
            collection_spec = str(Path(folder).resolve())
            if Path(folder, "manifest.json").is_file():  # a run directory: served by its own predictor
                run = load_models([f"{name}={folder}"], device=device)[name]
                if "embeddings" not in run.endpoints:
                    raise GuimoError(f"--encoder {spec}: the run's predictor cannot embed texts (its scenario is '{run.scenario}')")
                run.encoder_spec = collection_spec
                models[name] = run
                continue
        models[name] = ServedModel(name, "encoder", "embedding", EncoderPredictor(_text_encoder(collection_spec, device)),
                                   path=path, encoder_spec=collection_spec)
    return models


def _text_encoder(collection_spec: str, device: str):
    """The encoder for ``collection_spec``: on the CPU the one search collections load (shared), else a copy on ``device``."""
    if device == "cpu":
        from guimo.index.collection import load_encoder

        return load_encoder(collection_spec)
    from guimo.models.text_encoder import TextEncoder

    from guimo.index.collection import DEFAULT_ENCODER

    return TextEncoder(None if collection_spec == DEFAULT_ENCODER else collection_spec, device=device)


# -- batch jobs and the functions that run a whole batch in the model thread ------------------


@dataclass
class CompletionJob:
    prompt: str
    params: dict  # the predictor's stream() keyword arguments
    sink: Callable[[str], None] | None = None  # streamed pieces go here (thread-safe)
    cancelled: bool = False  # set by the route when the client leaves mid-stream


@dataclass
class ListJob:
    """Embeddings, recommendations, classifications: a list of inputs and per-request options."""

    inputs: list
    options: tuple = ()


def batch_function(model: ServedModel, endpoint: str) -> Callable[[list], list]:
    p = model.predictor
    if endpoint == "completions":

        def run(jobs: list[CompletionJob]) -> list:
            pieces = p.stream_batch([j.prompt for j in jobs], [j.params for j in jobs], cancelled=lambda i: jobs[i].cancelled)
            for i, piece in pieces:
                if jobs[i].sink is not None:
                    jobs[i].sink(piece)
            return list(p.last_batch)

        return run
    if endpoint == "embeddings":
        return _flat(lambda inputs, _opts: _embed(p, inputs))
    if endpoint == "recommendations":
        return _flat(lambda inputs, opts: p.recommend(inputs, k=opts[0], exclude_seen=opts[1]))
    if endpoint == "classifications":
        return _flat(lambda inputs, _opts: p.classify(inputs))
    if endpoint == "assistant":  # the NLU parse of /v1/assistant (commands per utterance); devices are acted on in the route
        return _flat(lambda inputs, _opts: p.parse(inputs))
    raise ValueError(f"no batch function for endpoint {endpoint}")


def _embed(p, texts: list[str]) -> list:
    vectors, counts = p.embed(texts)
    return list(zip(vectors, counts))


def _flat(fn: Callable[[list, tuple], list]) -> Callable[[list[ListJob]], list]:
    """Concatenate the inputs of jobs that share options, call ``fn`` once per group, split back."""

    def run(jobs: list[ListJob]) -> list:
        out: list = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for i, j in enumerate(jobs):
            groups.setdefault(j.options, []).append(i)
        for opts, idx in groups.items():
            inputs = [x for i in idx for x in jobs[i].inputs]
            results = list(fn(inputs, opts))
            if len(results) != len(inputs):
                raise RuntimeError(f"model returned {len(results)} results for {len(inputs)} inputs")
            at = 0
            for i in idx:
                n = len(jobs[i].inputs)
                out[i], at = results[at : at + n], at + n
        return out

    return run
