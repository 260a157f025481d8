"""``/docs`` and ``/redoc`` that work with no internet: Swagger UI and ReDoc served from a package.

FastAPI's own pages load ``swagger-ui-bundle.js``, ``swagger-ui.css`` and
``redoc.standalone.js`` from a CDN, so on a machine without internet they are blank. The
``fastapi-offline`` package (PyPI, MIT, maintained) ships those files; this module serves them
from the installed package under :data:`STATIC_PATH` and points both pages at them.

Usage, for any FastAPI app (the sandbox's and the API's)::

    app = FastAPI(...)
    mount_offline_docs(app)

It replaces the app's ``docs_url`` / ``redoc_url`` pages (the same paths, default ``/docs`` and
``/redoc``; a page the app turned off stays off), keeps the OAuth2 redirect page, and respects
``root_path`` behind a proxy. Call it once, after the app is built.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: where the assets are served from (under the app's root path)
STATIC_PATH = "/static-offline-docs"
#: the assets shipped by fastapi-offline: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"


def mount_offline_docs(app: FastAPI) -> FastAPI:
    """Serve ``app``'s Swagger UI and ReDoc pages from local assets; returns ``app``."""
    docs_url, redoc_url, openapi_url = app.docs_url, app.redoc_url, app.openapi_url
    if openapi_url is None or (docs_url is None and redoc_url is None):
        return app
    # drop FastAPI's CDN pages, keep everything else (the OAuth2 redirect page among it)
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in {docs_url, redoc_url}]
    app.mount(STATIC_PATH, StaticFiles(directory=ASSETS_DIR), name="offline-docs-assets")

    if docs_url is not None:

        @app.get(docs_url, include_in_schema=False)
        async def swagger_ui(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{root}{app.swagger_ui_oauth2_redirect_url}" if app.swagger_ui_oauth2_redirect_url else None,
                swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
                init_oauth=app.swagger_ui_init_oauth,
                swagger_ui_parameters=app.swagger_ui_parameters,
            )

    if redoc_url is not None:

        @app.get(redoc_url, include_in_schema=False)
        async def redoc(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{STATIC_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
                with_google_fonts=False,
            )

    return app
