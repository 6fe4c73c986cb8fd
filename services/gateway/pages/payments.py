"""资金发放: guarantee standards (低保标准), payment runs and their approval, the
bank file, the bank's return file and the reconciliation (对账).

Everything is payments' own RPC, called as the logged-in person: one person
prepares a run (``create_run``), another approves it (``approve_run``) —
payments refuses the preparer (maker ≠ checker) and the run's page shows that
refusal as a message. The bank file is answered as a download
(``Content-Disposition: attachment``) to a POST form: the account numbers
are in the file only, never in a URL or a page (the pages show them masked).
"""
from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from services.gateway.pages.base import Area, Nav, Section
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import Role

#: who reads the runs (payments' READERS at the district's finance side)
RUN_READERS = (Role.FINANCE_OFFICER, Role.DISTRICT_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR)
#: who approves: payments' RUN_CHECKERS
RUN_CHECKERS = frozenset({Role.FINANCE_OFFICER, Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR})
STANDARD_SETTERS = frozenset({Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR})
FORMATS = (("csv", "CSV（UTF-8）"), ("fixed", "定长文本"))
AREA_TYPES = ("urban", "rural")
#: the page's text for payments' refusals
MAKER_IS_CHECKER = "不能审批：您是本批次的经办（准备）人，须由另一人审批（经办与审批分离）。"
RUN_STATUS = {"prepared": "待审批", "approved": "已审批", "exported": "已生成银行文件", "reconciled": "已对账"}
LINE_STATUS = {"pending": "待发放", "exported": "已报盘", "paid": "已发放", "failed": "发放失败"}
MAX_RETURN_BYTES = 1_500_000

area = Area("payments", nav=[Nav("资金发放", "/payments/runs", roles=RUN_READERS, order=30),
                             Nav("保障标准", "/payments/standards", roles=RUN_READERS, order=31)])


def _values(**more):
    return dict(run_status=RUN_STATUS, line_status=LINE_STATUS, formats=FORMATS, area_types=AREA_TYPES, **more)


@area.section(roles=RUN_CHECKERS, order=30)
def runs_to_approve(ctx):
    """The runs prepared in the person's unit, waiting for someone other than their preparer."""
    waiting = [r for r in ctx.calls.payments.list_runs({"division_code": ctx.actor.unit})
               if r["status"] == "prepared"]
    return Section("待审批的发放批次", "payments/_worklist.html", items=waiting, empty="暂无待审批的批次",
                   extra={"run_status": RUN_STATUS})


@area.page("/payments/runs", roles=RUN_READERS)
def runs(ctx):
    found = ctx.calls.payments.list_runs({"division_code": ctx.actor.unit})
    found.sort(key=lambda r: (r["period"], r["area_type"]), reverse=True)
    return ctx.render("payments/runs.html", **_values(runs=found, errors={}, given={}))


@area.page("/payments/runs", methods=("POST",), roles=RUN_READERS)
def prepare(ctx):
    """准备: the run of a period and an area (again before approval: afresh)."""
    given = {"period": ctx.form.get("period", "").strip(), "area_type": ctx.form.get("area_type", ""),
             "division_code": ctx.form.get("division_code", "").strip() or ctx.actor.unit}
    try:
        run = ctx.calls.payments.create_run(given)
    except ValidationFailed as exc:
        found = ctx.calls.payments.list_runs({"division_code": ctx.actor.unit})
        return ctx.render("payments/runs.html", status=400,
                          **_values(runs=found, errors=exc.details.get("fields", {}), given=given))
    return ctx.redirect(f"/payments/runs/{run['id']}")


def _run_page(ctx, run_id, status=200, message=None, alert=None, result=None):
    try:
        run = ctx.calls.payments.get_run(run_id)
    except (NotFound, Forbidden):
        return ctx.error(NotFound("no such payment run", {"run_id": "?"}), title="未找到", text="没有这个发放批次。")
    may_approve = bool(ctx.actor.roles & RUN_CHECKERS)
    return ctx.render("payments/run.html", status=status,
                      **_values(run=run, message=message, alert=alert, result=result, may_approve=may_approve))


@area.page("/payments/runs/<uuid:run_id>", roles=RUN_READERS)
def run(ctx, run_id):
    return _run_page(ctx, run_id)


@area.page("/payments/runs/<uuid:run_id>/approval", methods=("POST",), roles=RUN_READERS)
def approve(ctx, run_id):
    """审批: by someone other than who prepared the run (payments refuses the preparer)."""
    try:
        ctx.calls.payments.approve_run(run_id)
    except Forbidden as exc:
        text = (MAKER_IS_CHECKER if (exc.details or {}).get("rule") == "maker_is_not_checker"
                else "不能审批：您的角色或辖区不允许审批此批次。")
        return _run_page(ctx, run_id, status=403, alert=text)
    except Conflict:
        return _run_page(ctx, run_id, status=409, alert="不能审批：此批次当前状态不允许审批。")
    return _run_page(ctx, run_id, message="已审批：批次已冻结，可生成银行文件。")


@area.page("/payments/runs/<uuid:run_id>/bank-file", methods=("POST",), roles=RUN_READERS)
def bank_file(ctx, run_id):
    """The bank file (报盘文件) as a download: the accounts are in the file, never in a URL."""
    try:
        out = ctx.calls.payments.export_run(run_id, ctx.form.get("format") or "csv")
    except Conflict:
        return _run_page(ctx, run_id, status=409, alert="批次审批后才能生成银行文件。")
    except ValidationFailed:
        return _run_page(ctx, run_id, status=400, alert="不支持的银行文件格式。")
    response = Response(base64.b64decode(out["content"]), mimetype="application/octet-stream")
    response.headers.set("Content-Disposition", "attachment", filename=out["filename"])
    return ctx.finish(response)


@area.page("/payments/runs/<uuid:run_id>/return", methods=("POST",), roles=RUN_READERS)
def return_file(ctx, run_id):
    """对账: the bank's return file, uploaded, through its format plugin."""
    upload = ctx.request.files.get("return_file")
    content = upload.read(MAX_RETURN_BYTES + 1) if upload else b""
    if not content:
        return _run_page(ctx, run_id, status=400, alert="请选择银行回盘文件。")
    if len(content) > MAX_RETURN_BYTES:
        return _run_page(ctx, run_id, status=413, alert="回盘文件过大。")
    try:
        result = ctx.calls.payments.import_return({"run_id": run_id, "format": ctx.form.get("format") or "csv",
                                                    "content": base64.b64encode(content).decode("ascii")})
    except ValidationFailed as exc:
        reasons = "；".join(str(v) for v in exc.details.get("fields", {}).values()) or str(exc)
        return _run_page(ctx, run_id, status=400, alert=f"回盘文件无法读取：{reasons}")
    except Conflict as exc:
        return _run_page(ctx, run_id, status=409, alert="无法对账：回盘中的明细已经对过账，或批次尚未生成银行文件。")
    return _run_page(ctx, run_id, message="回盘文件已对账。", result=result)


@area.page("/payments/standards", roles=RUN_READERS)
def standards(ctx):
    return _standards_page(ctx)


def _standards_page(ctx, status=200, errors=None, given=None, change=None):
    found = ctx.calls.payments.list_standards({})
    found.sort(key=lambda s: (s["division_code"], s["area_type"], s["effective_from"]), reverse=True)
    return ctx.render("payments/standards.html", status=status, standards=found, errors=errors or {},
                      given=given or {}, change=change, area_types=AREA_TYPES,
                      may_set=bool(ctx.actor.roles & STANDARD_SETTERS))


@area.page("/payments/standards", methods=("POST",), roles=STANDARD_SETTERS)
def set_standard(ctx):
    """提标/降标: a new standard; the open-ended one recalculates every case under it."""
    given = {key: ctx.form.get(key, "").strip() for key in
             ("division_code", "area_type", "effective_from", "effective_to", "monthly_amount")}
    given["division_code"] = given["division_code"] or ctx.actor.unit
    data = {k: (v or None) if k == "effective_to" else v for k, v in given.items()}
    try:
        out = ctx.calls.payments.set_standard(data)
    except ValidationFailed as exc:
        return _standards_page(ctx, status=400, errors=exc.details.get("fields", {}), given=given)
    return _standards_page(ctx, change=out.get("change") or {})
