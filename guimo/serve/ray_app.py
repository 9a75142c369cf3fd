"""`guimo serve --ray`: the same FastAPI app on Ray Serve, with a fixed number of replicas or
autoscaling between two bounds (the optional ``guimo[ray]`` extra).

Each replica is a Ray actor that builds the app itself with ``create_app_from_env`` (Ray Serve's
``serve.ingress(builder)``, Ray >= 2.47): nothing but the settings crosses the process boundary,
and they travel as the ``GUIMO_SERVE_*`` variables of the replica's runtime environment, exactly
as they do to ``uvicorn --workers`` processes. Ray's HTTP proxy listens on ``settings.host:port``
and spreads requests over the replicas; each replica runs its own micro-batchers, limits and
ledger writer, and all of them share one ledger database.

What is exact across replicas and what is not (the same as with ``--workers``): the monthly quota,
the idempotency of request ids and the bill are decided in the shared database, so they hold
across any number of replicas; requests/min, tokens/min and concurrent requests are counted per
replica, so a key may reach up to (replicas) times those limits. Replicas on more than one host
need a ledger every host can reach: ``--db postgresql://...``.

Request ids: Ray's proxy gives every request an ``X-Request-ID`` (the client's, else a new UUID)
and echoes it, so replicas see every id as the client's and check it against the ledger before
running the model (one indexed read per request), and do not echo it a second time.

Nothing here imports Ray at module level: ``import guimo`` and the server without ``--ray``
never load it.
"""

from __future__ import annotations

from typing import Any

from guimo.errors import GuimoError
from guimo.serve.core.config import Settings

APP_NAME = "guimo"


def import_ray() -> tuple[Any, Any]:
    """(ray, ray.serve), or a one-line error naming the extra."""
    try:
        import ray
        from ray import serve
    except ImportError as e:
        raise GuimoError(f"--ray needs the 'ray' extra: pip install 'guimo[ray]' ({e.name or e} missing)") from None
    return ray, serve


def parse_autoscale(text: str) -> tuple[int, int]:
    """'MIN,MAX' -> (MIN, MAX), with 0 <= MIN <= MAX and MAX >= 1."""
    try:
        lo, hi = (int(x) for x in text.split(","))
    except ValueError:
        raise GuimoError(f"--autoscale takes MIN,MAX replicas, e.g. 1,4 (got '{text}')") from None
    if lo < 0 or hi < 1 or lo > hi:
        raise GuimoError(f"--autoscale {text}: need 0 <= MIN <= MAX and MAX >= 1")
    return lo, hi


def deployment_options(settings: Settings, *, replicas: int = 1, autoscale: tuple[int, int] | None = None,
                       replica_cpus: float = 1.0, replica_gpus: float = 0.0, target_ongoing: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``serve.deployment``: replicas or autoscaling, CPUs, settings, limits.

    ``max_ongoing_requests`` is the replica's own queue plus its concurrent requests: below that,
    Ray's default (5 in flight per replica) would keep batches from ever filling. Autoscaling
    aims at ``target_ongoing`` requests in flight per replica (default: two full micro-batches).
    """
    if replicas < 1:
        raise GuimoError("--replicas must be at least 1")
    if replica_cpus <= 0:
        raise GuimoError("--replica-cpus must be positive")
    if replica_gpus < 0:
        raise GuimoError("--replica-gpus must be 0 or more")
    if replica_gpus == 0 and settings.device.startswith("cuda"):
        # Ray hides every GPU from an actor that reserved none, so such a replica could not start
        raise GuimoError(f"--device {settings.device} with --ray needs --replica-gpus (e.g. 1, or 0.5 for two replicas per GPU)")
    env = settings.model_copy(update={"echo_request_id": False}).to_env()  # Ray's proxy echoes X-Request-ID itself
    actor: dict[str, Any] = {"num_cpus": replica_cpus, "runtime_env": {"env_vars": env}}
    if replica_gpus:
        actor["num_gpus"] = replica_gpus  # Ray sets each replica's CUDA_VISIBLE_DEVICES to its share
    options: dict[str, Any] = {
        "name": APP_NAME,
        "ray_actor_options": actor,
        "max_ongoing_requests": settings.queue_size + settings.max_batch,
        "graceful_shutdown_timeout_s": settings.shutdown_timeout_s,
        "health_check_period_s": 10,
    }
    if autoscale is None:
        options["num_replicas"] = replicas
    else:
        lo, hi = autoscale
        options["autoscaling_config"] = {"min_replicas": lo, "max_replicas": hi, "initial_replicas": max(lo, min(replicas, hi)),
                                         "target_ongoing_requests": target_ongoing or 2 * settings.max_batch}
    return options


def application(settings: Settings, **kw) -> Any:
    """The Ray Serve application: one deployment whose replicas each build the guimo app."""
    _, serve = import_ray()
    from guimo.serve.main import create_app_from_env

    ingress = serve.ingress(create_app_from_env)()  # a class whose replicas call the builder at start
    return serve.deployment(ingress, **deployment_options(settings, **kw)).bind()


def start(settings: Settings, *, replicas: int = 1, autoscale: tuple[int, int] | None = None, replica_cpus: float = 1.0,
          replica_gpus: float = 0.0, address: str | None = None) -> str:
    """Start (or join, with ``address`` or RAY_ADDRESS) a Ray cluster and deploy; returns the base URL.

    Returns once every initial replica has loaded its models and passed startup. The ledger's
    tables are created here first, so replicas never race to create them.
    """
    ray, serve = import_ray()
    from guimo.serve import db

    settings = settings.model_copy(update={"db_url": db.normalise_url(settings.db_url)})  # every replica: the same file
    db.make_engine(settings.db_url).dispose()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(application(settings, replicas=replicas, autoscale=autoscale, replica_cpus=replica_cpus, replica_gpus=replica_gpus), name=APP_NAME,
              route_prefix="/", blocking=False)
    return f"http://{settings.host}:{settings.port}"


def replica_count() -> dict[str, int]:
    """Replica states of the guimo deployment, e.g. {'RUNNING': 2}."""
    _, serve = import_ray()
    app = serve.status().applications[APP_NAME]
    return dict(next(iter(app.deployments.values())).replica_states)


def stop() -> None:
    """Graceful: each replica drains its requests, flushes its ledger writes, then Ray shuts down."""
    ray, serve = import_ray()
    if ray.is_initialized():
        serve.shutdown()
        ray.shutdown()
