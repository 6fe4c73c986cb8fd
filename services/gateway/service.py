"""The gateway service: the HTTP JSON API (``/api/``) and the console (``/``).

Run alone: ``nameko run --config config.yml services.gateway.service``
(``WEB_SERVER_ADDRESS``, by default ``127.0.0.1:8080``: ``DIBAO_WEB_HOST``,
``DIBAO_WEB_PORT``); ``dibao up`` runs it with the others. Each entrypoint
hands the request to its module — the API's route table
(:mod:`services.gateway.api`), the console's pages
(:mod:`services.gateway.pages`) — which call the services as the person
logged in (:mod:`services.gateway.remote`).
"""
from __future__ import annotations

from services.gateway import api, assets, pages
from services.gateway.auth import WebSessions
from services.gateway.door import DOOR_KEY, PublicDoor
from services.gateway.http import http, json_response
from services.gateway.remote import PersonRpc
from shared.identity import Identity
from shared.reference import Reference


class GatewayService:
    name = "gateway"

    caller = Identity()       # the request's token, verified (signature, expiry, identity's revocations)
    calls = PersonRpc()       # the services, called as that person
    sessions = WebSessions()  # identity's session check, cookies, CSRF
    ref = Reference()         # divisions' names, today by the configured clock
    door = PublicDoor()       # the public pages: the gateway's own identity, rate limits per address

    @http("GET", "/healthz")
    def healthz(self, request):
        """Liveness for compose and load balancers: the gateway answers (no login, no data)."""
        return json_response({"service": self.name, "status": "ok"})

    @http("GET", "/api/openapi.json")
    def openapi(self, request):
        """The OpenAPI 3 document of the API, made from the route table's schemas."""
        return json_response(api.openapi_document())

    @http("GET", "/api/docs", kind="page")
    def api_docs(self, request):
        """Interactive API documentation (Swagger UI, served from its package: no CDN)."""
        return assets.api_docs_page()

    @http("GET", "/api/docs/assets/<path:name>", kind="page")
    def api_docs_assets(self, request, name):
        return assets.swagger_asset(request, name)

    @http("GET", "/static/<path:name>", kind="page")
    def static(self, request, name):
        return assets.static_file(request, name)

    @http("GET,POST,PUT,PATCH,DELETE", "/api/<path:path>")
    def api_call(self, request, path):
        """Every operator call of the route table, as the logged-in person."""
        return api.handle(request, self.caller, self.calls, self.sessions)

    @http("GET,POST", "/", kind="page")
    def console_home(self, request):
        request.environ[DOOR_KEY] = self.door
        return pages.handle(request, self.caller, self.calls, self.sessions, self.ref)

    @http("GET,POST", "/<path:path>", kind="page")
    def console(self, request, path):
        request.environ[DOOR_KEY] = self.door
        return pages.handle(request, self.caller, self.calls, self.sessions, self.ref)
