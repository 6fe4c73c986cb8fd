"""Files the gateway serves as they are: the console's CSS and scripts
(``services/gateway/static/``) and Swagger UI's, from the installed
``swagger-ui-bundle`` package's own directory (no CDN). Only files directly
inside those directories with a known type are served; anything else is 404.
"""
from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.wrappers import Response

from services.gateway.render import STATIC, html, render_text
from shared.errors import NotFound

TYPES = {".css": "text/css", ".js": "text/javascript", ".png": "image/png", ".svg": "image/svg+xml",
         ".map": "application/json", ".ico": "image/x-icon", ".woff2": "font/woff2"}
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-32x32.png",
                 "favicon-16x16.png")


def swagger_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def _file(directory: Path, name: str, request, allowed=None, max_age: int = 3600) -> Response:
    suffix = Path(name).suffix
    if "/" in name or "\\" in name or name.startswith(".") or suffix not in TYPES or (allowed and name not in allowed):
        raise NotFound("no such file", {"path": "?"})
    path = directory / name
    if not path.is_file():
        raise NotFound("no such file", {"path": "?"})
    response = Response(path.read_bytes(), mimetype=TYPES.get(suffix) or mimetypes.guess_type(name)[0])
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.add_etag()
    return response.make_conditional(request)


def static_file(request, name: str) -> Response:
    return _file(STATIC, name, request)


def swagger_asset(request, name: str) -> Response:
    if name == "initializer.js":
        return _file(STATIC, "api-docs.js", request)
    return _file(swagger_dir(), name, request, allowed=SWAGGER_FILES, max_age=86400)


def api_docs_page() -> Response:
    return html(render_text("api/docs.html"))
