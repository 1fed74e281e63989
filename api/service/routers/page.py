"""The bench's web page (``/``) and the API docs (``/docs``, ``/redoc``), served from installed packages.

Nothing here is fetched from the internet: the page is plain HTML, CSS and JavaScript shipped in
this package (``api/service/static``, package data), and the docs load Swagger UI and ReDoc from the
``fastapi-offline`` package's files instead of FastAPI's default CDN. A bench PC without internet
gets the same page and docs as one with it.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(str(files("crossbar_hil.api.service") / "static"))
"""The page's own files (index.html, *.js, *.css)."""

PAGE_PREFIX = "/ui"
DOCS_ASSETS_PREFIX = "/docs-assets"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
"""The page may load and send to its own service only: the browser refuses any other host."""

DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
"""Swagger UI and ReDoc start from inline scripts and styles, but they too may ask this service only
(ReDoc's side menu would otherwise load its vendor's logo from that vendor's CDN)."""


def docs_assets_dir() -> Path:
    """Swagger UI and ReDoc files of the installed ``fastapi-offline`` package."""
    return Path(fastapi_offline.__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Serve the page at ``/`` (its files under ``/ui``) and the offline docs; call on an app
    made with ``docs_url=None, redoc_url=None``."""
    app.mount(PAGE_PREFIX, StaticFiles(directory=STATIC_DIR), name="ui")
    app.mount(DOCS_ASSETS_PREFIX, StaticFiles(directory=docs_assets_dir()), name="docs-assets")
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=headers)

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        html = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS_PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # No badge from the vendor's validator.
        )
        html.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return html

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        html = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            redoc_js_url=f"{DOCS_ASSETS_PREFIX}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS_PREFIX}/favicon.png",
            with_google_fonts=False,
        )
        html.headers["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return html
