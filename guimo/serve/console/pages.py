"""The console's pages: sign-in, keys, usage, models, playground, scale, audit (served under /console).

Every page is rendered on the server from the same functions the API and the CLI use: keys from
``guimo.serve.keys`` (audited there), usage and bills from ``guimo.serve.ledger`` and
``guimo.serve.billing``, models from the app's registry and their run folders, the playground
through the API's own route functions (``playground``). A tenant's session sees only its tenant:
every query is filtered by the session's tenant id, and a key id or tenant name from another tenant
in a URL is a 404 or a 403, never its data. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from guimo.errors import GuimoError
from guimo.serve import audit, ledger
from guimo.serve.billing import price_lines
import guimo.serve.console.catalog as catalog
import guimo.serve.console.charts as charts
import guimo.serve.console.playground as playground
import guimo.serve.console.sessions as sessions
import guimo.serve.console.usage as usage_data
from guimo.serve.console.sessions import Viewer
from guimo.serve.errors import ApiError
from guimo.serve.keys import AuthError, authenticate, create_key, key_status, list_keys, revoke_key, rotate_key, set_limits
from guimo.serve.models import ApiKey, Tenant, utcnow
from guimo.serve.state import AppState

router = APIRouter(prefix="/console", include_in_schema=False)
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
TEMPLATES = Path(__file__).parent / "templates"


class ConsoleError(Exception):
    """A console page's error: rendered as an HTML page with this status (the API's errors stay JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class SignInRequired(Exception):
    """No live session: GET pages redirect to the sign-in page; other requests get 401."""


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v: "—" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.4g}"
    env.filters["money"] = lambda v: f"{v:,.4f}"
    env.filters["bytes"] = lambda v: "—" if v is None else f"{v / 1e6:,.1f} MB" if v >= 1e6 else f"{v / 1e3:,.1f} kB"
    env.filters["when"] = lambda t: "—" if t is None else t.strftime("%Y-%m-%d %H:%M")
    return env


_ENV = None


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    global _ENV
    if _ENV is None:
        _ENV = _env()
    html = _ENV.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status)


# -- dependencies ---------------------------------------------------------------------------------------


async def get_state(request: Request) -> AppState:
    return request.app.state.guimo


StateDep = Annotated[AppState, Depends(get_state)]


async def get_viewer(request: Request, state: StateDep) -> Viewer:
    viewer = await asyncio.to_thread(sessions.load, state.engine, request.cookies.get(sessions.COOKIE))
    if viewer is None:
        raise SignInRequired()
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def checked_form(request: Request, viewer: ViewerDep) -> dict[str, str]:
    """The POSTed form, after its CSRF token matched the session's (else 403)."""
    form = await request.form()
    if not sessions.same_token(str(form.get("csrf_token", "")), viewer.csrf):
        raise ConsoleError(403, "This form was sent without its security token (CSRF); reload the page and try again.")
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict, Depends(checked_form)]


def actor(viewer: Viewer) -> str:
    return audit.console_actor(viewer.role, viewer.prefix, viewer.tenant)


# -- sign-in ---------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def home(request: Request, state: StateDep):
    viewer = await asyncio.to_thread(sessions.load, state.engine, request.cookies.get(sessions.COOKIE))
    return RedirectResponse("/console/usage" if viewer else "/console/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request):
    return sign_in_form(request)


def sign_in_form(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    """The form with a fresh sign-in CSRF token (also in a cookie: the POST must bring both)."""
    token = sessions.new_signin_token()
    resp = render(request, "sign_in.html", status=status, viewer=None, csrf=token, error=error)
    set_cookie(request, resp, sessions.SIGNIN_COOKIE, token, max_age=3600)
    return resp


@router.post("/sign-in")
async def sign_in(request: Request, state: StateDep, key: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = ""):
    if not sessions.same_token(csrf_token, request.cookies.get(sessions.SIGNIN_COOKIE)):
        raise ConsoleError(403, "The sign-in form was sent without its security token (CSRF); open the sign-in page again.")
    key = key.strip()
    ttl = state.settings.console_session_s
    try:
        from guimo.serve.console.operators import find_admin

        op = await asyncio.to_thread(find_admin, state.engine, key) if key.startswith("gm-") and len(key) < 200 else None
        if op is not None:
            token = await asyncio.to_thread(sessions.start, state.engine, role="operator", ttl_s=ttl, admin_key_id=op.admin_key_id)
            await asyncio.to_thread(audit.record, state.engine, actor=audit.console_actor("operator", op.prefix), action="console.sign_in")
        else:
            p = await asyncio.to_thread(authenticate, state.engine, key)
            token = await asyncio.to_thread(sessions.start, state.engine, role="tenant", ttl_s=ttl, tenant_id=p.tenant_id, key_id=p.key_id)
            await asyncio.to_thread(audit.record, state.engine, actor=audit.console_actor("tenant", p.prefix, p.tenant),
                                    action="console.sign_in", tenant_id=p.tenant_id, target=p.prefix)
    except AuthError as e:
        return sign_in_form(request, error=str(e), status=401)
    resp = RedirectResponse("/console/usage", status_code=303)
    set_cookie(request, resp, sessions.COOKIE, token, max_age=int(ttl))
    resp.delete_cookie(sessions.SIGNIN_COOKIE, path=sessions.PATH)
    return resp


@router.post("/sign-out")
async def sign_out(request: Request, state: StateDep, viewer: ViewerDep, form: FormDep):
    await asyncio.to_thread(sessions.end, state.engine, request.cookies.get(sessions.COOKIE))
    await asyncio.to_thread(audit.record, state.engine, actor=actor(viewer), action="console.sign_out", tenant_id=viewer.tenant_id)
    resp = RedirectResponse("/console/sign-in", status_code=303)
    resp.delete_cookie(sessions.COOKIE, path=sessions.PATH)
    return resp


def set_cookie(request: Request, resp: Response, name: str, value: str, *, max_age: int) -> None:
    resp.set_cookie(name, value, max_age=max_age, path=sessions.PATH, httponly=True, samesite="strict",
                    secure=request.url.scheme == "https")


# -- keys ------------------------------------------------------------------------------------------------


def _tenant_names(state: AppState) -> list[str]:
    with Session(state.engine) as s:
        return list(s.scalars(select(Tenant.name).order_by(Tenant.name)))


def _keys_context(state: AppState, viewer: Viewer, tenant: str | None) -> dict:
    rows = list_keys(state.engine, tenant=viewer.tenant if not viewer.is_operator else tenant)
    now = utcnow()
    keys = [{"k": k, "tenant": t, "status": key_status(k, now)} for k, t in rows]
    return {"keys": keys, "tenants": _tenant_names(state) if viewer.is_operator else [], "tenant": tenant,
            "models": sorted(state.models)}


@router.get("/keys", response_class=HTMLResponse)
async def keys_page(request: Request, state: StateDep, viewer: ViewerDep, tenant: str | None = None):
    _only_own(viewer, tenant)
    ctx = await asyncio.to_thread(_keys_context, state, viewer, tenant)
    return render(request, "keys.html", viewer=viewer, page="keys", created=None, message=None, **ctx)


def _int_or_none(form: dict, name: str) -> int | None:
    text = form.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ConsoleError(400, f"{name.replace('_', ' ')} must be a positive whole number, got '{text}'.")
    return int(text)


@router.post("/keys", response_class=HTMLResponse)
async def create_key_action(request: Request, state: StateDep, viewer: ViewerDep, form: FormDep):
    tenant = form.get("tenant", "").strip() if viewer.is_operator else viewer.tenant
    if not tenant:
        raise ConsoleError(400, "Name the tenant the key is for.")
    models = [m for m in (request_list(await request.form(), "models")) if m] or None
    unknown = [m for m in models or [] if m not in state.models]
    if unknown:
        raise ConsoleError(400, f"Unknown model(s): {', '.join(unknown)}.")
    expires = None
    if form.get("expires_in", "").strip():
        from guimo.duration import parse_duration

        expires = utcnow() + dt.timedelta(seconds=_guimo(parse_duration, form["expires_in"], "expires in"))
    limits = {f: _int_or_none(form, f) for f in LIMITS}
    family = None
    if not viewer.is_operator:
        models, limits = within_own_grant(viewer.principal, models, limits)
        family = viewer.principal.key_family if viewer.principal.monthly_quota is not None else None
    secret, k = await asyncio.to_thread(
        _guimo, create_key, state.engine, tenant=tenant, models=models, **limits, expires_at=expires,
        name=form.get("name", "").strip() or None, actor=actor(viewer), family_id=family)
    ctx = await asyncio.to_thread(_keys_context, state, viewer, None)
    resp = render(request, "keys.html", viewer=viewer, page="keys", created={"secret": secret, "prefix": k.prefix, "tenant": tenant},
                  message=None, **ctx)
    return resp


LIMITS = ("rpm", "tpm", "max_concurrent", "monthly_quota")


def within_own_grant(principal, models: list[str] | None, limits: dict[str, int | None]) -> tuple[list[str] | None, dict]:
    """A tenant's console grants no more than the key it signed in with: its models at most (none ticked: its
    models), and each limit at most its own (left blank: its own). An operator sets anything (`guimo keys`).
    A new key of a key with a monthly quota joins that key's quota family (the caller passes ``family_id``),
    so creating keys never multiplies the quota."""
    if principal.models is not None:
        extra = sorted(set(models or principal.models) - set(principal.models))
        if extra:
            raise ConsoleError(403, f"Your key may use only {', '.join(principal.models)}; it cannot grant {', '.join(extra)}.")
        models = models or list(principal.models)
    out = {}
    for name in LIMITS:
        own, asked = getattr(principal, name), limits.get(name)
        if own is not None and asked is not None and asked > own:
            raise ConsoleError(403, f"{name.replace('_', ' ')} {asked} is above your own key's {own}; an operator can raise it.")
        out[name] = asked if asked is not None else own
    return models, out


def no_broader(principal, k: ApiKey) -> None:
    """Rotating hands out a key with ``k``'s grants: a tenant may do it only for keys no broader than its own."""
    broader = principal.models is not None and (k.models is None or set(k.models) - set(principal.models))
    broader = broader or any(getattr(principal, n) is not None and (getattr(k, n) is None or getattr(k, n) > getattr(principal, n))
                             for n in LIMITS)
    if broader:
        raise ConsoleError(403, f"Key {k.prefix} grants more than the key you signed in with; an operator can rotate it.")


def request_list(form, name: str) -> list[str]:
    return [v.strip() for v in form.getlist(name) if isinstance(v, str)]


def _guimo(fn, *args, **kw):
    """Call ``fn``; a GuimoError (a bad limit, an ambiguous prefix) becomes a 400 page with its message."""
    try:
        return fn(*args, **kw)
    except GuimoError as e:
        raise ConsoleError(400, str(e)) from None


def _own_key(state: AppState, viewer: Viewer, key_id: int) -> ApiKey:
    """The key with this id if the viewer may act on it; another tenant's key is the same 404 as a missing one."""
    with Session(state.engine, expire_on_commit=False) as s:
        k = s.get(ApiKey, key_id)
    if k is None or (not viewer.is_operator and k.tenant_id != viewer.tenant_id):
        raise ConsoleError(404, f"No key with id {key_id}.")
    return k


@router.post("/keys/{key_id}/revoke", response_class=HTMLResponse)
async def revoke_action(request: Request, key_id: int, state: StateDep, viewer: ViewerDep, form: FormDep):
    k = await asyncio.to_thread(_own_key, state, viewer, key_id)
    await asyncio.to_thread(_guimo, revoke_key, state.engine, k.prefix, actor=actor(viewer))
    state.key_cache.clear()  # this process stops accepting it at once (other workers within key_cache_s)
    return RedirectResponse(request.url_for("keys_page").path, status_code=303)


@router.post("/keys/{key_id}/rotate", response_class=HTMLResponse)
async def rotate_action(request: Request, key_id: int, state: StateDep, viewer: ViewerDep, form: FormDep):
    from guimo.duration import parse_duration

    k = await asyncio.to_thread(_own_key, state, viewer, key_id)
    if not viewer.is_operator:
        no_broader(viewer.principal, k)
    grace = dt.timedelta(seconds=_guimo(parse_duration, form.get("grace", "24h") or "24h", "grace"))
    secret, old, new = await asyncio.to_thread(_guimo, rotate_key, state.engine, k.prefix, grace=grace, actor=actor(viewer))
    state.key_cache.clear()
    ctx = await asyncio.to_thread(_keys_context, state, viewer, None)
    tenant = next((r["tenant"] for r in ctx["keys"] if r["k"].id == new.id), viewer.tenant)
    return render(request, "keys.html", viewer=viewer, page="keys", message=None,
                  created={"secret": secret, "prefix": new.prefix, "tenant": tenant, "replaces": old.prefix, "until": old.expires_at}, **ctx)


@router.post("/keys/{key_id}/limits", response_class=HTMLResponse)
async def limits_action(request: Request, key_id: int, state: StateDep, viewer: ViewerDep, form: FormDep):
    k = await asyncio.to_thread(_own_key, state, viewer, key_id)
    limits = {f: _int_or_none(form, f) for f in LIMITS}
    if not viewer.is_operator:
        _, limits = within_own_grant(viewer.principal, None, limits)
    await asyncio.to_thread(_guimo, set_limits, state.engine, k.prefix, **limits, actor=actor(viewer))
    state.key_cache.clear()
    return RedirectResponse(request.url_for("keys_page").path, status_code=303)


# -- usage -----------------------------------------------------------------------------------------------


def _only_own(viewer: Viewer, tenant: str | None) -> None:
    if tenant and not viewer.is_operator and tenant != viewer.tenant:
        raise ConsoleError(403, "A tenant's console shows only its own tenant.")


def _scope(state: AppState, viewer: Viewer, tenant: str | None) -> int | None:
    """The tenant id to filter by: the viewer's own, or (operator) the named tenant's, or None for every tenant."""
    _only_own(viewer, tenant)
    if not viewer.is_operator:
        return viewer.tenant_id
    if not tenant:
        return None
    tid = ledger.tenant_id(state.engine, tenant)
    if tid is None:
        raise ConsoleError(404, f"No tenant named '{tenant}'.")
    return tid


def _month(month: str | None) -> str:
    if month is None or month == "":
        return usage_data.current_month()
    if not MONTH.fullmatch(month):
        raise ConsoleError(400, f"month must look like 2026-05, got '{month}'.")
    return month


def _usage_context(state: AppState, viewer: Viewer, tenant: str | None, month: str) -> dict:
    tid = _scope(state, viewer, tenant)
    lines = usage_data.daily(state.engine, state.prices, month=month, tenant_id=tid)
    unit = state.prices.currency
    chart_list = []
    for measure, title, u in (("requests", "Requests per day", "requests"), ("tokens", "Tokens per day", "tokens"),
                              ("cost", "Cost per day", unit)):
        days, series = usage_data.series(lines, month, measure)
        chart_list.append({"id": f"chart-{measure}", "title": title, "svg": charts.stacked_bars(f"chart-{measure}", title, days, series, u)})
    by_model: dict[str, dict] = {}
    for ln in lines:
        m = by_model.setdefault(ln.row.model, {"model": ln.row.model, "requests": 0, "tokens": 0, "units": 0, "cost": 0.0})
        m["requests"] += ln.row.requests
        m["tokens"] += ln.row.prompt_tokens + ln.row.completion_tokens
        m["units"] += ln.row.units
        m["cost"] += ln.cost
    bill_month = usage_data.current_month()
    bills = []
    tenants = [(viewer.tenant_id, viewer.tenant)] if not viewer.is_operator else (
        [(tid, tenant)] if tid is not None else [(ledger.tenant_id(state.engine, n), n) for n in _tenant_names(state)])
    for t_id, name in tenants:
        bl = price_lines(ledger.usage(state.engine, tenant_id=t_id, month=bill_month), state.prices)
        if bl or not viewer.is_operator:
            bills.append({"tenant": name, "lines": bl, "total": sum(x.total for x in bl)})
    return {"charts": chart_list, "by_model": sorted(by_model.values(), key=lambda m: m["model"]), "month": month, "bills": bills,
            "bill_month": bill_month, "currency": unit, "prices_source": state.prices.source, "tenant": tenant,
            "tenants": _tenant_names(state) if viewer.is_operator else []}


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(request: Request, state: StateDep, viewer: ViewerDep, month: str | None = None, tenant: str | None = None):
    ctx = await asyncio.to_thread(_usage_context, state, viewer, tenant, _month(month))
    return render(request, "usage.html", viewer=viewer, page="usage", **ctx)


@router.get("/usage.csv")
async def usage_csv(state: StateDep, viewer: ViewerDep, month: str | None = None, tenant: str | None = None):
    month = _month(month)
    tid = await asyncio.to_thread(_scope, state, viewer, tenant)
    lines = await asyncio.to_thread(usage_data.daily, state.engine, state.prices, month=month, tenant_id=tid)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"usage-{viewer.tenant or tenant or 'all'}-{month}.csv")  # a tenant name is free text
    return Response(usage_data.to_csv(lines, state.prices.currency), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- models ----------------------------------------------------------------------------------------------


def _visible(state: AppState, viewer: Viewer) -> list:
    return [m for name, m in sorted(state.models.items()) if viewer.is_operator or viewer.principal.may_use(name)]


def _served_run(state: AppState, viewer: Viewer, name: str) -> Path:
    m = state.models.get(name)
    if m is None or not (viewer.is_operator or viewer.principal.may_use(name)) or catalog.run_folder(m) is None:
        raise ConsoleError(404, f"No served run named '{name}'.")
    return catalog.run_folder(m)


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request, state: StateDep, viewer: ViewerDep):
    cards = await asyncio.to_thread(lambda: [catalog.card(m, state.engine) for m in _visible(state, viewer)])
    return render(request, "models.html", viewer=viewer, page="models", cards=cards)


@router.get("/models/{name}/report", response_class=HTMLResponse)
async def model_report(request: Request, name: str, state: StateDep, viewer: ViewerDep):
    folder = _served_run(state, viewer, name)
    if not (folder / "report.md").is_file():
        raise ConsoleError(404, f"The run '{name}' has no report.md.")
    html = catalog.render_markdown((folder / "report.md").read_text(errors="replace"), f"/console/models/{name}")
    return render(request, "report.html", viewer=viewer, page="models", title=f"Report of {name}", html=html)


@router.get("/models/{name}/plots/{file}")
async def model_plot(name: str, file: str, state: StateDep, viewer: ViewerDep):
    path = catalog.plot_file(_served_run(state, viewer, name) / "plots", file)
    if path is None:
        raise ConsoleError(404, f"The run '{name}' has no plot '{file}'.")
    return FileResponse(path)


# -- playground ------------------------------------------------------------------------------------------


@router.get("/playground", response_class=HTMLResponse)
async def playground_page(request: Request, state: StateDep, viewer: ViewerDep):
    by_endpoint: dict[str, list[str]] = {}
    for m in _visible(state, viewer):
        for e in m.endpoints:
            by_endpoint.setdefault(e, []).append(m.name)
    collections = []
    if not viewer.is_operator and state.collections is not None:
        handles = await asyncio.to_thread(state.collections.list, viewer.tenant_id)
        collections = [h.name for h in handles]
    return render(request, "playground.html", viewer=viewer, page="playground", by_endpoint=by_endpoint, collections=collections)


@router.post("/playground/{endpoint}")
async def playground_call(request: Request, endpoint: str, state: StateDep):
    """JSON in, the API's answer out (JSON, or server-sent events for a streamed completion); errors as the API's."""
    viewer = await asyncio.to_thread(sessions.load, state.engine, request.cookies.get(sessions.COOKIE))
    if viewer is None:
        raise ApiError(401, "Your console session has ended; sign in again.", code="session_expired")
    if not sessions.same_token(request.headers.get("x-csrf-token"), viewer.csrf):
        raise ApiError(403, "Missing or wrong X-CSRF-Token header.", code="csrf_failed")
    if viewer.is_operator:
        raise ApiError(403, "The playground runs requests as a tenant: sign in with a tenant's API key.", code="operator_has_no_tenant")
    handler = playground.handlers().get(endpoint)
    if handler is None:
        raise ApiError(404, f"The playground has no endpoint '{endpoint}'.", code="not_found")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "The playground sends JSON bodies.", code="invalid_json") from None
    rs = request.scope.setdefault("state", {})
    return await handler(request, body, state, viewer.principal, rs)


# -- scale and audit -------------------------------------------------------------------------------------


@router.get("/scale", response_class=HTMLResponse)
async def scale_page(request: Request, state: StateDep, viewer: ViewerDep):
    report = await asyncio.to_thread(catalog.latest_scale_report, state.settings.console_runs_dir)
    html = catalog.render_markdown(report.report_md, "/console/scale") if report else None
    figs, notes = await asyncio.to_thread(catalog.economics, _visible(state, viewer), state.prices, state.settings.console_throughput)
    from guimo.scale.economics import format_value

    return render(request, "scale.html", viewer=viewer, page="scale", report=report, html=html, figures=figs, notes=notes,
                  fmt=format_value, runs_dir=state.settings.console_runs_dir, prices_source=state.prices.source)


@router.get("/scale/plots/{file}")
async def scale_plot(file: str, state: StateDep, viewer: ViewerDep):
    report = await asyncio.to_thread(catalog.latest_scale_report, state.settings.console_runs_dir)
    path = catalog.plot_file(report.folder / "plots", file) if report else None
    if path is None:
        raise ConsoleError(404, f"The latest scale report has no plot '{file}'.")
    return FileResponse(path)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, state: StateDep, viewer: ViewerDep):
    rows = await asyncio.to_thread(audit.entries, state.engine, tenant_id=None if viewer.is_operator else viewer.tenant_id)
    return render(request, "audit.html", viewer=viewer, page="audit", rows=rows)
