"""保障金台账: the cases payments pays, a case by month, its payee account.

The ledger is payments' own (``list_cases``: the unit's cases, payees and
accounts masked); a case's page is ``payments.case_statement`` — the benefit
in force from each month on and each run's line for it. The payee account
is changed with ``payments.set_payee`` by the people payments lets
(PAYEE_SETTERS); the number typed in goes in the POST body only, is never
shown again (the page shows it masked) and never put in a URL. A case
outside the person's jurisdiction and one that does not exist get the same
403 page (payments records the refused read as its command).
"""
from __future__ import annotations

from services.gateway import labels
from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area, Nav
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.identity import Role

#: payments' READERS and PAYEE_SETTERS
READERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR,
           Role.TOWNSHIP_OFFICER, Role.COMMUNITY_OFFICER, Role.AUDITOR)
PAYEE_SETTERS = frozenset({Role.COMMUNITY_OFFICER, Role.DISTRICT_OFFICER, Role.FINANCE_OFFICER})
LINE_STATUS = {"pending": "待发放", "paid": "已发放", "failed": "发放失败"}
RUN_STATUS = {"prepared": "待审批", "approved": "已审批", "exported": "已生成银行文件", "reconciled": "已对账"}
HOLD = {"benefit_basis_missing": "缺少核定依据（待重新核定）", "no_payee_account": "缺少收款账户", "no_checkin": "未续保登记",
        "zero_benefit": "保障金为零", "not_payable": "不在发放期内"}

area = Area("ledger", nav=[Nav("保障金台账", "/payments/ledger", roles=READERS, order=29)])


@area.page("/payments/ledger", roles=READERS)
def ledger(ctx):
    area_type = ctx.request.args.get("area_type")
    query = {"division_code": ctx.actor.unit, **({"area_type": area_type} if area_type in labels.AREA else {})}
    cases = ctx.calls.payments.list_cases(query)
    return ctx.render("ledger/list.html", cases=cases, area_type=query.get("area_type"),
                      case_status=labels.CASE_STATUS, holds=HOLD,
                      total=sum((_amount(c) for c in cases if c["status"] == "active"), start=_amount(None)))


def _amount(case):
    from decimal import Decimal

    return Decimal(str(case["monthly_benefit"])) if case else Decimal("0.00")


def case_page(ctx, case_id, status=200, alert="", notice="", errors=None, given=None):
    try:
        statement = ctx.calls.payments.case_statement(case_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    return ctx.render("ledger/case.html", status=status, statement=statement, case=statement["case"],
                      alert=alert, notice=notice, errors=errors or {}, given=given or {},
                      case_status=labels.CASE_STATUS, line_status=LINE_STATUS, run_status=RUN_STATUS, holds=HOLD,
                      may_set_payee=bool(ctx.actor.roles & PAYEE_SETTERS))


@area.page("/payments/cases/<uuid:case_id>", roles=READERS)
def case(ctx, case_id):
    return case_page(ctx, case_id, notice="收款账户已更新。" if ctx.request.args.get("done") else "")


@area.page("/payments/cases/<uuid:case_id>/payee", methods=("POST",), roles=PAYEE_SETTERS)
def set_payee(ctx, case_id):
    """Where the benefit is paid: the account holder, the account, the bank (payments.set_payee)."""
    given = {k: forms.text(ctx.form, k) for k in ("payee_name", "bank_name")}
    account = forms.text(ctx.form, "account_number").replace(" ", "")
    try:
        ctx.calls.payments.set_payee({"case_id": case_id, "payee_name": given["payee_name"],
                                      "account_number": account, "bank_name": given["bank_name"] or None})
    except (NotFound, Forbidden) as exc:
        if forms.refused(exc) and isinstance(exc, Forbidden) and (exc.details or {}).get("allowed"):
            return case_page(ctx, case_id, status=403, alert=forms.refusal_text(exc), given=given)
        return record_refused(ctx)
    except ValidationFailed as exc:
        return case_page(ctx, case_id, status=400, alert=forms.refusal_text(exc), errors=forms.field_errors(exc),
                         given=given)    # the account typed in is not shown again
    return ctx.redirect(f"/payments/cases/{case_id}?done=1")
