"""The console's page registry: every area module under this package.

Each module ``services/gateway/pages/<name>.py`` (not starting with ``_``,
not ``base``) defines ``area = Area(...)`` (:mod:`services.gateway.pages.base`);
its pages, navigation links and worklist sections are found here at import,
so adding an area touches no other file. :func:`handle` answers one console
request: the route, the person (a page that needs a login sends anyone else
to ``/login``), the page's roles, the CSRF token of a form, the view, and
the console's error page for whatever it raises.
"""
from __future__ import annotations

import importlib
import pkgutil
from uuid import UUID

from werkzeug.exceptions import MethodNotAllowed as RouteMethodNotAllowed, NotFound as RouteNotFound
from werkzeug.routing import Map, Rule

from services.gateway.auth import CSRF_FIELD, UNSAFE_METHODS
from services.gateway.exceptions import MethodNotAllowed, Unauthenticated, public_error
from services.gateway.pages.base import Area, Nav, PageContext, Section
from shared.errors import Forbidden, NotFound


def _areas() -> list[Area]:
    found = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module.name.startswith("_") or module.name == "base":
            continue
        area = getattr(importlib.import_module(f"{__name__}.{module.name}"), "area", None)
        if isinstance(area, Area):
            found.append(area)
    return found


AREAS: list[Area] = _areas()
PAGES = [page for area in AREAS for page in area.pages]
NAV: list[Nav] = [nav for area in AREAS for nav in area.nav]
SECTIONS = sorted((s for area in AREAS for s in area.sections), key=lambda s: s.order)
URL_MAP = Map([Rule(p.rule, endpoint=p, methods=list(p.methods)) for p in PAGES], strict_slashes=False)


def sections_for(ctx: PageContext) -> list[Section]:
    """The worklist's blocks for this person, in their areas' order (a block
    whose service refuses or does not answer is shown as such, the rest stand)."""
    out = []
    for source in SECTIONS:
        if source.roles and not (ctx.actor.roles & source.roles):
            continue
        try:
            section = source.build(ctx)
        except Exception as exc:  # noqa: BLE001 - one block failing leaves the others
            error = public_error(exc, where="worklist section")
            if isinstance(error, Unauthenticated):
                raise
            section = Section("暂时无法显示", "worklist/_unavailable.html", extra={"error": error.to_dict()})
        if section is not None:
            out.append(section)
    return out


def handle(request, caller, calls, sessions, reference):
    """One console request, answered."""
    adapter = URL_MAP.bind_to_environ(request.environ)
    actor, refused = None, None
    if calls.token:
        try:
            actor = sessions.person(caller, calls)
        except Unauthenticated as exc:
            refused = exc
    ctx = PageContext(request, actor, calls, sessions, reference, NAV, current=request.path)
    try:
        page, values = adapter.match()
    except RouteMethodNotAllowed:
        return ctx.error(MethodNotAllowed("method not allowed here", {}))
    except RouteNotFound:
        return ctx.error(NotFound("no such page", {"path": "?"}))
    if page.login and actor is None:
        return to_login(ctx, refused is not None)
    if page.roles and not (actor.roles & page.roles):
        return ctx.error(Forbidden("your role may not open this page", {"reason": "role"}))
    values = {key: str(value) if isinstance(value, UUID) else value for key, value in values.items()}
    try:
        if request.method in UNSAFE_METHODS:
            sessions.check_csrf(request, actor, request.form.get(CSRF_FIELD))
        return page.view(ctx, **values)
    except Exception as exc:  # noqa: BLE001 - every error becomes the one mapping
        error = public_error(exc, where=page.endpoint)
        if isinstance(error, Unauthenticated):
            sessions.ended(actor)
            return to_login(ctx, True)
        return ctx.error(error)


def to_login(ctx: PageContext, clear: bool):
    response = ctx.redirect("/login")
    if clear:
        ctx.sessions.clear(response, ctx.request)
    return response
