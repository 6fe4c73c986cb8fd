"""The gateway's ``@http`` entrypoint and web server (nameko's, on werkzeug).

- :class:`GatewayWebServer` puts the caller's token in the worker's context
  data (``auth_token``, what every Dibao RPC carries): the bearer token of an
  API client, else the console's session cookie. Unmatched paths and
  methods answer with the one error body (404 / 405), and every answer
  carries the security headers (a Content-Security-Policy without inline
  script, no framing, no sniffing, no referrer; ``no-store`` except for the
  static files).
- :class:`HttpEntrypoint` (``@http(method, url, kind="api" | "page")``)
  turns whatever a handler raises into the one error mapping
  (:mod:`services.gateway.exceptions`): JSON for the API, an HTML page for
  the console. An untyped error becomes ``internal_error`` with a
  reference; its traceback is logged under that reference only.
"""
from __future__ import annotations

import json

from nameko.constants import WEB_SERVER_CONFIG_KEY
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed as WerkzeugMethodNotAllowed, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from services.gateway.exceptions import (MethodNotAllowed, PayloadTooLarge, body_of, public_error, status_of)
from shared.errors import DibaoError, NotFound
from shared.identity import AUTH_TOKEN_KEY

SESSION_COOKIE = "dibao_session"
DEFAULT_ADDRESS = "127.0.0.1:8080"
#: request bodies above this are refused (413) before they are read
DEFAULT_MAX_BODY = 2 * 1024 * 1024

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
                           "frame-ancestors 'none'")
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def request_token(request: Request) -> tuple[str | None, str | None]:
    """(token, how it came: ``bearer`` | ``cookie``), or (None, None)."""
    token = bearer_token(request)
    if token:
        return token, "bearer"
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        return token, "cookie"
    return None, None


def json_response(payload, status: int = 200, headers=None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=str), status=status, headers=headers,
                    mimetype="application/json")


def error_response(error: DibaoError) -> Response:
    headers = {"WWW-Authenticate": 'Bearer realm="dibao"'} if status_of(error) == 401 else None
    return json_response(body_of(error), status_of(error), headers)


def wants_json(path: str) -> bool:
    return path.startswith("/api/") or path == "/api" or path == "/healthz"


class SecureApp:
    """WSGI middleware: the security headers on every answer."""

    def __init__(self, app, secure: bool):
        self.app = app
        self.headers = list(SECURITY_HEADERS)
        if secure:
            self.headers.append(("Strict-Transport-Security", "max-age=31536000"))

    def __call__(self, environ, start_response):
        static = environ.get("PATH_INFO", "").startswith(("/static/", "/api/docs/assets/"))

        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(k, v) for k, v in self.headers if k.lower() not in present]
            if not static and "cache-control" not in present:
                headers.append(("Cache-Control", "no-store"))
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class GatewayRequest(Request):
    max_content_length = DEFAULT_MAX_BODY
    max_form_memory_size = 500_000


class GatewayWsgiApp(WsgiApp):
    """nameko's WsgiApp with the one error body for paths and methods no
    entrypoint takes, and a limit on request bodies."""

    def __init__(self, server, max_body: int):
        super().__init__(server)
        self.request_class = type("LimitedRequest", (GatewayRequest,), {"max_content_length": max_body})

    def __call__(self, environ, start_response):
        request = self.request_class(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values
            response = provider.handle_request(request)
        except WerkzeugMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.valid_methods or ()))
            response = self.error(environ, MethodNotAllowed("method not allowed here", {"allowed": allowed}))
            if allowed:
                response.headers["Allow"] = allowed
        except HTTPException as exc:
            if exc.code == 404:
                response = self.error(environ, NotFound("no such page", {"path": "?"}))
            else:
                response = exc
        return response(environ, start_response)

    def error(self, environ, error: DibaoError) -> Response:
        if wants_json(environ.get("PATH_INFO", "")):
            return error_response(error)
        from services.gateway.render import error_page   # the console's page for it

        return error_page(error)


class GatewayWebServer(WebServer):
    """nameko's WebServer: the token into the context data, our WSGI app."""

    @property
    def bind_addr(self):
        from nameko.web.server import parse_address

        return parse_address(str(self.container.config.get(WEB_SERVER_CONFIG_KEY) or DEFAULT_ADDRESS))

    def context_data_from_headers(self, request):
        token, how = request_token(request)
        return {AUTH_TOKEN_KEY: token, "dibao_token_from": how} if token else {}

    def get_wsgi_app(self):
        config = self.container.config
        max_body = int(config.get("WEB_MAX_BODY_BYTES") or DEFAULT_MAX_BODY)
        return SecureApp(GatewayWsgiApp(self, max_body), secure_cookies(config) is True)

    @property
    def port(self) -> int:
        """The port actually bound (``WEB_SERVER_ADDRESS`` may say 0: any free one)."""
        return self._sock.getsockname()[1]


def secure_cookies(config: dict):
    """``WEB_SECURE_COOKIES``: true (always ``Secure``), false, or ``auto``
    (``Secure`` when the request came over https)."""
    value = str(config.get("WEB_SECURE_COOKIES", "auto")).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return "auto"


class HttpEntrypoint(HttpRequestHandler):
    """``@http(method, url, kind="api")``: typed errors become the one error
    body (``kind="api"``) or the console's error page (``kind="page"``)."""

    server = GatewayWebServer()

    def __init__(self, method, url, kind: str = "api", **kwargs):
        kwargs.setdefault("expected_exceptions", (DibaoError,))
        self.kind = kind
        super().__init__(method, url, **kwargs)

    def handle_request(self, request):
        try:
            return super().handle_request(request)
        except RequestEntityTooLarge:
            return self.error_answer(PayloadTooLarge("the request body is too large", {}))

    def handle_result(self, event, worker_ctx, result, exc_info):
        if exc_info is not None:
            exc = exc_info[1]
            if isinstance(exc, RequestEntityTooLarge):
                exc = PayloadTooLarge("the request body is too large", {})
            error = public_error(exc, where=f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}")
            result, exc_info = self.error_answer(error), None
        event.send(result, None)
        return result, exc_info

    def error_answer(self, error: DibaoError) -> Response:
        if self.kind == "page":
            from services.gateway.render import error_page

            return error_page(error)
        return error_response(error)

    def response_from_exception(self, exc):
        return self.error_answer(public_error(exc, where=self.url))


http = HttpEntrypoint.decorator
