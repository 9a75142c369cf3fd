"""`guimo serve [RUN ...]` — the model service (FastAPI under uvicorn) over run directories."""

from __future__ import annotations

import argparse

EPILOG = """\
Limits: requests/min, tokens/min and concurrent requests are enforced per worker process, so
with --workers N a key may reach up to N times those limits on one host; the monthly quota and
the ledger are exact across workers and replicas (they are sums over the shared database).
Run replicas over one PostgreSQL ledger with --db postgresql://USER@HOST:PORT/DB.
Ray Serve (pip install 'guimo[ray]'): --ray --replicas N, or --ray --autoscale MIN,MAX; the same
app and limits per replica; RAY_ADDRESS joins an existing Ray cluster instead of starting one.
Replicas on GPUs: --replica-gpus 1 (or 0.5: two replicas share a GPU); without it Ray hides the GPUs.
Create keys with `guimo keys create --tenant NAME`; see usage with `guimo usage --tenant NAME`."""


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help="ledger database: sqlite:///PATH, a file path, or postgresql://USER@HOST:PORT/DB "
                                              "(default: SQLite in the user data directory; env GUIMO_SERVE_DB_URL)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve run directories over an OpenAI-compatible HTTP API",
                       description="Serve finished runs: /v1/completions and /v1/embeddings for language models, "
                                   "/v1/recommendations and /v1/classifications for the other scenarios, /v1/embeddings for "
                                   "text encoders (--encoder), and each tenant's search collections at /v1/collections and "
                                   "/v1/search, with API keys, "
                                   "rate limits, quotas, a usage ledger and dynamic micro-batching.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directory, or NAME=RUN to choose the model name (default: every servable run under ./runs)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    add_db_argument(p)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    p.add_argument("--ray", action="store_true", help="deploy on Ray Serve instead of uvicorn (the 'ray' extra)")
    p.add_argument("--replicas", type=int, default=1, help="with --ray: replicas (default: 1; with --autoscale: the initial count)")
    p.add_argument("--autoscale", metavar="MIN,MAX", help="with --ray: autoscale between MIN and MAX replicas on requests in flight")
    p.add_argument("--replica-cpus", type=float, default=1.0, help="with --ray: CPUs Ray reserves per replica (default: 1)")
    p.add_argument("--replica-gpus", type=float, default=0.0, help="with --ray: GPUs per replica, e.g. 1 or 0.5 (default: 0; needed for --device cuda)")
    p.add_argument("--no-batching", action="store_true", help="one request per model call (the unbatched baseline)")
    p.add_argument("--max-batch", type=int, default=32, help="largest micro-batch (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill; not waited while the previous batch held one request (default: 5)")
    p.add_argument("--queue-size", type=int, default=256, help="waiting requests per model before shedding with 503 (default: 256)")
    p.add_argument("--max-body-bytes", type=int, default=1_048_576, help="request body limit, else 413 (default: 1 MiB)")
    p.add_argument("--max-tokens-limit", type=int, default=1024, help="largest max_tokens accepted (default: 1024)")
    p.add_argument("--encoder", action="append", default=[], metavar="NAME[=FOLDER]",
                   help="serve a text encoder at /v1/embeddings without a run: all-minilm-l6-v2 (the packaged one, 'text' extra) "
                        "or NAME=FOLDER (a sentence-transformers folder or a run directory); the first is what new dense "
                        "search collections use (repeatable)")
    p.add_argument("--collections", metavar="DIR", help="where tenants' search collections live, DIR/<tenant id>/<name> "
                                                        "(default: 'collections' beside the SQLite ledger file; with PostgreSQL, in the user data directory)")
    p.add_argument("--assistant-dir", metavar="DIR", help="where tenants' smart-home states live for /v1/assistant, DIR/<tenant id>/state.sqlite "
                                                          "(and an optional DIR/<tenant id>/home.toml; default: 'assistant' beside the SQLite ledger file)")
    p.add_argument("--console", action="store_true",
                   help="also serve the web console at /console: keys, usage and bills, models, a playground, scale reports "
                        "(sign in with an API key, or an admin key from `guimo keys admin`; the 'console' extra)")
    p.add_argument("--console-session", default="8h", metavar="DURATION", help="with --console: how long a sign-in lasts (default: 8h)")
    p.add_argument("--device", default="auto", help="where the models run: auto (the GPU when torch sees one), cpu, cuda or cuda:N (default: auto)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import json
    import os

    from guimo.errors import GuimoError

    if args.workers < 1:
        raise GuimoError("--workers must be at least 1")
    if not args.ray and (args.autoscale or args.replicas != 1 or args.replica_gpus):
        raise GuimoError("--replicas, --autoscale and --replica-gpus need --ray (for processes on one host use --workers)")
    if args.ray and args.workers != 1:
        raise GuimoError("--workers is for uvicorn; with --ray use --replicas or --autoscale")
    from guimo.device import pick_device

    if not args.ray:  # Ray replicas may run on other machines: each checks its own device as it starts
        pick_device(args.device)  # a GPU that is not there: one line, before any worker starts
    runs = args.runs or _default_runs(required=not (args.encoder or args.collections or args.console))
    for spec in runs:  # fail fast, in one line, before any worker starts
        from guimo.pipeline.rundir import RunDir
        from guimo.serve.registry import parse_spec

        RunDir.open(parse_spec(spec)[1]).weights_path()
    env = {
        "GUIMO_SERVE_RUNS": json.dumps(runs), "GUIMO_SERVE_HOST": args.host, "GUIMO_SERVE_PORT": str(args.port),
        "GUIMO_SERVE_WORKERS": str(args.workers), "GUIMO_SERVE_BATCHING": str(not args.no_batching).lower(),
        "GUIMO_SERVE_MAX_BATCH": str(args.max_batch), "GUIMO_SERVE_MAX_WAIT_MS": str(args.max_wait_ms),
        "GUIMO_SERVE_QUEUE_SIZE": str(args.queue_size), "GUIMO_SERVE_MAX_BODY_BYTES": str(args.max_body_bytes),
        "GUIMO_SERVE_MAX_TOKENS_LIMIT": str(args.max_tokens_limit), "GUIMO_SERVE_DEVICE": args.device,
    }
    if args.console:
        from guimo.duration import parse_duration

        env["GUIMO_SERVE_CONSOLE"] = "true"
        env["GUIMO_SERVE_CONSOLE_SESSION_S"] = str(parse_duration(args.console_session, "--console-session"))
        try:
            import jinja2  # noqa: F401
            import markdown_it  # noqa: F401
        except ModuleNotFoundError as e:
            raise GuimoError(f"--console needs the 'console' extra: pip install 'guimo[console]' ({e.name} missing)") from None
    if args.db:
        env["GUIMO_SERVE_DB_URL"] = args.db
    if args.encoder:
        env["GUIMO_SERVE_ENCODERS"] = json.dumps(args.encoder)
    if args.collections:
        from pathlib import Path

        env["GUIMO_SERVE_COLLECTIONS_DIR"] = str(Path(args.collections).resolve())  # workers may start elsewhere
    if args.assistant_dir:
        from pathlib import Path

        env["GUIMO_SERVE_ASSISTANT_DIR"] = str(Path(args.assistant_dir).resolve())
    os.environ.update(env)  # workers are fresh processes: the settings travel in the environment
    try:
        from pydantic import ValidationError

        from guimo.serve.core.config import Settings

        settings = Settings()
    except ValidationError as e:
        raise GuimoError(f"invalid server setting: {e.errors()[0]['loc'][0]}: {e.errors()[0]['msg']}") from None
    except ModuleNotFoundError as e:
        raise GuimoError(f"serving needs the 'serve' extra: pip install 'guimo[serve]' ({e.name} missing)") from None
    import uvicorn

    from guimo.serve import db, logs

    logs.configure()
    if args.ray:
        return _serve_on_ray(settings, args)
    db.make_engine(settings.db_url).dispose()  # create the tables once, and fail here on a bad URL
    common = dict(host=settings.host, port=settings.port, log_config=None, access_log=False,
                  timeout_graceful_shutdown=int(settings.shutdown_timeout_s))
    if settings.workers > 1:
        uvicorn.run("guimo.serve.main:create_app_from_env", factory=True, workers=settings.workers, **common)
    else:
        from guimo.serve.main import create_app

        uvicorn.run(create_app(settings), **common)
    return 0


def _serve_on_ray(settings, args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    from guimo.serve import ray_app

    autoscale = ray_app.parse_autoscale(args.autoscale) if args.autoscale else None
    ray_app.import_ray()  # the missing extra in one line, before anything starts
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        url = ray_app.start(settings, replicas=args.replicas, autoscale=autoscale, replica_cpus=args.replica_cpus, replica_gpus=args.replica_gpus)
        print(f"serving on {url} (Ray Serve, replicas {ray_app.replica_count()}); Ctrl-C stops", file=sys.stderr)
        while not done.wait(1.0):
            pass
    finally:
        ray_app.stop()
    return 0


def _default_runs(required: bool = True) -> list[str]:
    from pathlib import Path

    from guimo import scenarios
    from guimo.errors import GuimoError
    from guimo.pipeline.rundir import list_runs

    found = []
    if Path("runs").is_dir():
        for run in list_runs("runs"):
            if run.scenario in scenarios.SCENARIOS and run.stage_done("train"):
                found.append(str(run.path))
    if not found and required:
        raise GuimoError("no runs to serve: give run directories, e.g. `guimo serve runs/lm-20260101-120000`, "
                         "or serve search collections and a text encoder: `guimo serve --encoder all-minilm-l6-v2`")
    return found
