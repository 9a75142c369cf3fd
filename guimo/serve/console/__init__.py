"""The web console (`guimo serve --console`, issue #26): server-rendered pages at /console for tenants
(signed in with an API key) and operators (signed in with an admin key from `guimo keys admin`).

``install(app)`` adds the pages, the static files (one CSS file, one small script; no build step), the
HTML error pages and the security headers of every /console response. Everything the pages show comes
from the functions the API and the CLI use (see ``pages``).
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
# Pages load only their own CSS, script and images; nothing may frame them (clickjacking)
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                                 b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),  # a page may show a key once: never from a cache
]


def install(app) -> None:
    """Mount the console on ``app`` (a FastAPI app built by ``guimo.serve.main.create_app``)."""
    from fastapi import Request
    from fastapi.responses import HTMLResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    import guimo.serve.console.pages as pages

    app.router.routes.extend(pages.router.routes)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(pages.ConsoleError)
    async def _console_error(request: Request, e: pages.ConsoleError) -> HTMLResponse:
        return pages.render(request, "error.html", status=e.status, viewer=None, status_code=e.status, message=e.message)

    @app.exception_handler(pages.SignInRequired)
    async def _sign_in(request: Request, e: pages.SignInRequired):
        if request.method == "GET":
            return RedirectResponse("/console/sign-in", status_code=303)
        return pages.render(request, "error.html", status=401, viewer=None, status_code=401,
                            message="Your session has ended (or you never signed in). Sign in again.")

    app.add_middleware(ConsoleHeaders)


class ConsoleHeaders:
    """Plain ASGI middleware adding ``SECURITY_HEADERS`` to /console responses (API responses untouched)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/console/static/")

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                extra = [h for h in SECURITY_HEADERS if not (static and h[0] == b"cache-control")]
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, with_headers)
