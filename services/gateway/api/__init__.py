"""The HTTP JSON API: one table of routes, each an RPC of a service.

A route names its HTTP method and path, the service and method it calls,
the marshmallow schemas of its body, query and answer (the services' own,
from :mod:`contracts.rpc`), and how the parts become the RPC's arguments:
the path's ``{values}`` by name, the body as one argument (``body_as``) or
spread, the query spread or as one argument (``query_as``). The same table
makes the OpenAPI document (:mod:`services.gateway.api.openapi`). Area
modules ``services/gateway/api/<area>.py`` each hold a ``ROUTES`` list; they
are found here by themselves.

A call: the person (401 without a login), the CSRF header when the login
came as the console's cookie and the call changes something, the path
values (ids are uuids, 400 naming the field otherwise), the query and the
body loaded with the route's schemas (400 naming every field; the body as
sent then goes to the service, which loads it again), then the RPC *as that
person*; its answer is the response. Typed errors map to HTTP by
:mod:`services.gateway.exceptions`.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import re
import uuid
from dataclasses import dataclass, field
from functools import lru_cache

from marshmallow import Schema
from werkzeug.exceptions import MethodNotAllowed as RouteMethodNotAllowed, NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

from services.gateway.auth import CSRF_HEADER, UNSAFE_METHODS
from services.gateway.exceptions import MethodNotAllowed
from services.gateway.http import json_response
from shared.errors import NotFound, ValidationFailed
from shared.rpc import load

PREFIX = "/api"
_PARAM = re.compile(r"{([a-z_][a-z0-9_]*)}")


@dataclass(frozen=True, eq=False)
class Route:
    """One API operation: ``METHOD path`` → ``service.rpc(arguments)``."""

    method: str
    path: str                       # OpenAPI style, under /api: "/households/{household_id}"
    service: str
    rpc: str
    summary: str
    tag: str
    body: type[Schema] | None = None
    #: the body as this one keyword argument (None: its fields as keyword arguments)
    body_as: str | None = "data"
    query: type[Schema] | None = None
    #: the query as this one keyword argument (None: its fields as keyword arguments)
    query_as: str | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    #: path values that are not uuids: name → ("integer" | "string", description)
    path_types: dict = field(default_factory=dict)
    description: str = ""
    #: the call ends the caller's session (logout, a new password): the gateway forgets it at once
    ends_session: bool = False

    @property
    def operation_id(self) -> str:
        return f"{self.service}.{self.rpc}"

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    def werkzeug_rule(self) -> str:
        return _PARAM.sub(lambda m: f"<{m.group(1)}>", self.path)


def _areas() -> list[Route]:
    routes = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_") or module.name in ("openapi", "schemas"):
            continue
        routes += getattr(importlib.import_module(f"{__name__}.{module.name}"), "ROUTES", [])
    return routes


ROUTES: list[Route] = _areas()
URL_MAP = Map([Rule(r.werkzeug_rule(), endpoint=r, methods=[r.method]) for r in ROUTES], strict_slashes=False)


@lru_cache(maxsize=1)
def openapi_document() -> dict:
    from services.gateway.api.openapi import document

    return document(ROUTES)


def path_value(route: Route, name: str, value: str):
    kind = route.path_types.get(name, ("uuid", ""))[0]
    if kind == "integer":
        if not value.isdigit() or len(value) > 18:
            raise ValidationFailed.field(name, "not a valid id (an integer)")
        return int(value)
    if kind == "uuid":
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValidationFailed.field(name, "not a valid id (a uuid)") from None
    return value


def json_body(request):
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailed.field("_schema", "the body is not JSON (UTF-8)") from None


def arguments(route: Route, request, values: dict) -> dict:
    """The RPC's keyword arguments, every part checked with the route's schemas."""
    kwargs = {name: path_value(route, name, values[name]) for name in route.path_params}
    if route.query is not None:
        query = {k: v for k, v in request.args.items()}
        load(route.query, query)
        if route.query_as:
            kwargs[route.query_as] = query
        else:
            kwargs.update(query)
    elif request.args:
        raise ValidationFailed.field(next(iter(request.args)), "Unknown field.")
    if route.body is not None:
        body = json_body(request)
        load(route.body, body)
        if route.body_as:
            kwargs[route.body_as] = body
        else:
            kwargs.update(body)
    return kwargs


def handle(request, caller, calls, sessions):
    """One API call, answered (errors are raised: the entrypoint maps them)."""
    adapter = URL_MAP.bind("gateway")
    try:
        route, values = adapter.match(request.path[len(PREFIX):] or "/", method=request.method)
    except RouteMethodNotAllowed as exc:
        raise MethodNotAllowed("method not allowed here", {"allowed": ", ".join(sorted(exc.valid_methods or ()))})
    except RouteNotFound:
        raise NotFound("no such API path", {"path": "?"}) from None
    actor = sessions.person(caller, calls)
    if request.method in UNSAFE_METHODS and caller_came_by_cookie(calls):
        sessions.check_csrf(request, actor, request.headers.get(CSRF_HEADER))
    kwargs = arguments(route, request, values)
    answer = getattr(getattr(calls, route.service), route.rpc)(**kwargs)
    if route.ends_session:
        sessions.ended(actor)
    return json_response(answer, route.status)


def caller_came_by_cookie(calls) -> bool:
    return calls.how_authenticated == "cookie"
