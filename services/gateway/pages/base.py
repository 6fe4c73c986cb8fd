"""What a console area is made of: its pages, its navigation, its worklist sections.

An area is one module ``services/gateway/pages/<area>.py`` with templates in
``services/gateway/templates/<area>/``::

    from services.gateway.pages.base import Area, Nav

    area = Area("payments", nav=[Nav("发放", "/payments/runs", roles={"finance_officer"})])

    @area.page("/payments/runs")
    def runs(ctx):
        return ctx.render("payments/runs.html", runs=ctx.calls.payments.list_runs())

    @area.section(roles={"finance_officer"}, order=30)
    def runs_to_approve(ctx):          # a block on everyone's 待办 page
        return Section("待审批的发放批次", "payments/_worklist.html", items=[...])

The page registry (:mod:`services.gateway.pages`) finds the module by
itself. A page's view takes a :class:`PageContext` (the request, the person,
the services called as that person, the rendering) and the URL's values;
it returns a werkzeug Response (``ctx.render`` / ``ctx.redirect``). Forms
are checked for their CSRF token before the view runs (``ctx.form``);
typed errors from the services become the console's error page. No personal
data in a URL: rows are named by their uuids (``<uuid:household_id>``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from werkzeug.utils import redirect as werkzeug_redirect
from werkzeug.wrappers import Request, Response

from services.gateway import render
from shared.identity import Actor, Role


@dataclass(frozen=True)
class Nav:
    """A link in the navigation, for people holding one of ``roles`` (empty: everyone logged in)."""

    label: str
    path: str
    roles: frozenset = frozenset()
    order: int = 50

    def __post_init__(self):
        object.__setattr__(self, "roles", frozenset(Role(r) for r in self.roles))

    def shown_to(self, actor: Actor | None) -> bool:
        return actor is not None and (not self.roles or bool(actor.roles & self.roles))


@dataclass(frozen=True)
class Page:
    rule: str
    view: Callable
    methods: tuple[str, ...] = ("GET",)
    #: False: the page is for anybody (the login page)
    login: bool = True
    #: who may open it (empty: any logged-in person); the services still check every call
    roles: frozenset = frozenset()
    endpoint: str = ""


@dataclass(frozen=True)
class Section:
    """One block of the worklist (待办) page: a title, a template that shows ``items``."""

    title: str
    template: str
    items: list = field(default_factory=list)
    empty: str = "暂无"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SectionSource:
    build: Callable
    roles: frozenset
    order: int


class Area:
    def __init__(self, name: str, nav=()):
        self.name = name
        self.nav = list(nav)
        self.pages: list[Page] = []
        self.sections: list[SectionSource] = []

    def page(self, rule: str, methods=("GET",), login: bool = True, roles=()):
        def register(view):
            self.pages.append(Page(rule, view, tuple(m.upper() for m in methods), login,
                                   frozenset(Role(r) for r in roles), f"{self.name}.{view.__name__}"))
            return view
        return register

    def section(self, roles=(), order: int = 50):
        def register(build):
            self.sections.append(SectionSource(build, frozenset(Role(r) for r in roles), order))
            return build
        return register


class PageContext:
    """What a view works with. ``calls`` acts as the logged-in person."""

    def __init__(self, request: Request, actor: Actor | None, calls, sessions, reference, nav: list[Nav],
                 current: str = ""):
        self.request = request
        self.actor = actor
        self.calls = calls
        self.sessions = sessions
        self.reference = reference
        self.nav = nav
        self.current = current
        self.new_cookies: dict[str, str] = {}
        self.csrf_token = sessions.csrf_token(request, actor, self.new_cookies)

    @property
    def form(self):
        return self.request.form

    def today(self):
        return self.reference.today()

    def division_name(self, code: str | None) -> str:
        if not code:
            return "—"
        try:
            return self.reference.divisions.get(code).name
        except KeyError:
            return code

    def render(self, template: str, status: int = 200, **context) -> Response:
        response = render.page(template, status=status, me=self.actor, nav=self.nav_for_me(),
                               csrf_token=self.csrf_token, current=self.current,
                               division_name=self.division_name, **context)
        return self.finish(response)

    def error(self, error, status: int | None = None, title: str | None = None, text: str | None = None):
        response = render.error_page(error, me=self.actor, nav=self.nav_for_me(), csrf_token=self.csrf_token,
                                     status=status, title=title, text=text)
        return self.finish(response)

    def redirect(self, path: str) -> Response:
        """303 See Other to a path of this site (never an address given by the request)."""
        if not path.startswith("/") or path.startswith("//"):
            path = "/"
        return self.finish(werkzeug_redirect(path, code=303))

    def finish(self, response: Response) -> Response:
        for name, value in self.new_cookies.items():
            self.sessions.set_csrf_cookie(response, self.request, value)
        return response

    def nav_for_me(self) -> list[Nav]:
        return sorted((n for n in self.nav if n.shown_to(self.actor)), key=lambda n: (n.order, n.path))
