"""户档: a household's file (一户一档) — members, incomes, assets, documents.

Every view is intake's ``get_household``, which records it as
``file_viewed`` (who read which household's file, when: 责任追究). ID
numbers are shown masked. A household outside the person's jurisdiction
and one that does not exist get the same 403 page (an officer learns
nothing about other communities; intake records the refused read).
"""
from __future__ import annotations

from decimal import Decimal

from services.gateway.pages.base import Area
from shared.errors import Forbidden, NotFound

area = Area("households")

RECORD_REFUSED = "您无权查看此记录：它不在您的辖区内，或者不存在。"


def record_refused(ctx):
    """The one answer for a record outside the person's jurisdiction or never issued."""
    return ctx.error(Forbidden("not yours to open, or no such record", {"reason": "jurisdiction_or_missing"}),
                     status=403, title="无权查看", text=RECORD_REFUSED)


@area.page("/households/<uuid:household_id>")
def household(ctx, household_id):
    try:
        found = ctx.calls.intake.get_household(household_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    income = sum((Decimal(str(i["monthly_amount"])) for i in found.get("incomes", [])), Decimal("0"))
    return ctx.render("households/household.html", household=found, monthly_income=income)
