"""待办: the landing page of every role — what waits for the person in their unit.

The page gathers the worklist sections every area contributes
(``@area.section(roles=...)``, :mod:`services.gateway.pages.base`): each
shows its items with their statutory deadlines and the overdue (超期) and
provisional (暂定: counted across a year whose official working-day schedule
is not loaded yet) marks.
"""
from __future__ import annotations

from services.gateway.pages import base

area = base.Area("worklist", nav=[base.Nav("待办", "/", order=0)])


@area.page("/")
def worklist(ctx):
    from services.gateway.pages import sections_for

    return ctx.render("worklist/index.html", sections=sections_for(ctx), today=ctx.today())
