"""Served models: run directories -> predictors, plus the batch function for each serve kind.

Which endpoints a model answers follows from its scenario's ``serve_kind`` (see ``ENDPOINTS``),
never from its name: a new scenario is served by giving it a ``serve_kind`` and a predictor.

Predictor contracts, by kind:
- completion: ``stream_batch(prompts, params, cancelled=...)`` yielding (row, piece) and setting
  ``last_batch``; ``count_tokens(text)``; optionally ``embed(texts) -> (vectors, token_counts)``.
- recommendation: ``recommend(histories, k=10, exclude_seen=True) -> [{"items", "scores", "unknown_items"}]``;
  ``unknown(history)``, ``unknown_message(unknown, total)`` and ``id_examples()`` name ids not in the catalogue.
- classification: ``classify(inputs) -> [{"label", "scores": {label: probability}}]``.
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
    "classification": ("classifications",),
}


@dataclass
class ServedModel:
    name: str
    scenario: str
    kind: str
    predictor: Any
    path: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    batchers: dict[str, Any] = field(default_factory=dict)  # endpoint -> Batcher, once the app has started

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
                                   created=int(run.path.joinpath("manifest.json").stat().st_mtime))
    return models


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
