"""公开页面: the pages anybody may open, without a login (DESIGN §3.8).

- ``/board`` and ``/board/<division code>`` — 张榜公示, the notice board of a
  community, a township (or the district): what notify's printed sheets show
  (``notify.public_board``: the same cells, the ID number masked, nothing a
  printed notice does not show), each notice's printable sheet and the
  board's (``…/sheet.pdf``: the PDF files notify wrote, ``notify.public_sheet``).
- ``/board/<code>/notices/<notice uuid>/objection`` — an online objection
  (群众异议) to a notice up on that board: the text, and a name and phone
  only if the person wants to give them (anonymous by default); recorded by
  notify as one given at the community office and routed the same way
  (``objection_filed``: review sends the application back to a home
  investigation). At most ``PUBLIC_OBJECTION_LIMIT`` per client address.
- ``/status`` — an application's status by its number (the 受理编号 on the
  receipt) and the last four characters of the applicant's ID number:
  the step and its dates only. A wrong pair answers exactly as a number
  that does not exist. At most ``PUBLIC_STATUS_LIMIT`` lookups per address.

They call as the gateway's own identity, which may make exactly these
calls (services/gateway/door.py, shared/permissions.py); every form still
carries its CSRF token. URLs carry division codes and notice uuids only.
"""
from __future__ import annotations

import base64
import re

from werkzeug.wrappers import Response

from services.gateway.door import door_of
from services.gateway.pages.base import Area, Nav
from shared.errors import NotFound, ValidationFailed

area = Area("public", nav=[Nav("公示栏", "/board", order=95)])

APPLICATION_NUMBER = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ID_LAST4 = re.compile(r"^[0-9]{3}[0-9X]$")
NOT_FOUND_TEXT = "没有查到这份申请：请核对受理编号和申请人身份证号后四位。"
LIMITED_TEXT = {"objection": "同一网络地址提交异议过于频繁，请稍后再试，或到社区（村）低保专干处当面反映。",
                "status": "同一网络地址查询过于频繁，请稍后再试。",
                "appeal": "同一网络地址提交复核申请过于频繁，请稍后再试，或到社区（村）低保专干处申请。"}
OBJECTION_FIELDS = ("text", "contact_name", "contact_phone")


def public(ctx):
    """The services, called as the gateway itself (the public reads only)."""
    return ctx.calls.with_token(door_of(ctx.request).token())


def board_unit(ctx, code: str):
    """The division of a board address; any other code is the 404 page."""
    if code not in ctx.reference.divisions:
        raise NotFound("no such board", {"path": "?"})
    return ctx.reference.divisions.get(code)


def limited(ctx, limit: str):
    """429 when this address used ``limit`` too often (the use is counted otherwise)."""
    wait = door_of(ctx.request).wait_before(limit, ctx.request)
    if not wait:
        return None
    response = ctx.render("public/limited.html", status=429, text=LIMITED_TEXT[limit], minutes=int(wait // 60) + 1)
    response.headers["Retry-After"] = str(int(wait) + 1)
    return response


# --- 张榜公示 --------------------------------------------------------------------------

@area.page("/board", login=False)
def boards(ctx):
    """Every board of the district: its townships, each with its communities."""
    divisions = ctx.reference.divisions
    townships: dict[str, list] = {}
    for community in divisions.communities():
        townships.setdefault(community.parent, []).append(community)
    return ctx.render("public/boards.html",
                      townships=[(divisions.get(code), members) for code, members in sorted(townships.items())])


@area.page("/board/<code>", login=False)
def board(ctx, code):
    board_unit(ctx, code)
    return ctx.render("public/board.html", board=public(ctx).notify.public_board(code))


@area.page("/board/<code>/sheet.pdf", login=False)
def board_sheet(ctx, code):
    """The whole board on one printable A4 sheet (the file notify wrote)."""
    board_unit(ctx, code)
    return pdf(public(ctx).notify.public_sheet(code))


@area.page("/board/<code>/notices/<uuid:notice_id>/sheet.pdf", login=False)
def notice_sheet(ctx, code, notice_id):
    """One notice's printable sheet."""
    board_unit(ctx, code)
    return pdf(public(ctx).notify.public_sheet(code, notice_id))


def pdf(answer: dict) -> Response:
    return Response(base64.b64decode(answer["content_base64"]), mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{answer["filename"]}"'})


# --- 群众异议 (online) -------------------------------------------------------------------

@area.page("/board/<code>/notices/<uuid:notice_id>/objection", methods=("GET", "POST"), login=False)
def objection(ctx, code, notice_id):
    board_unit(ctx, code)
    calls = public(ctx)
    shown = calls.notify.public_board(code)
    notice = next((n for n in shown["notices"] if n["notice_id"] == notice_id), None)
    if notice is None:
        raise NotFound("no such notice on this board", {"notice_id": notice_id})
    values = {"text": "", "contact_name": "", "contact_phone": "", "anonymous": True}
    if ctx.request.method == "GET":
        return objection_form(ctx, shown, notice, values, {})
    form = ctx.form
    anonymous = form.get("anonymous") == "yes"
    values = {name: form.get(name, "").strip() for name in OBJECTION_FIELDS}
    values["anonymous"] = anonymous
    if not values["text"]:
        return objection_form(ctx, shown, notice, values, {"text": ["请写明异议的内容"]}, status=400)
    if not anonymous and not values["contact_name"]:
        return objection_form(ctx, shown, notice, values, {"contact_name": ["实名反映请留下姓名，或选择匿名"]}, status=400)
    too_often = limited(ctx, "objection")
    if too_often is not None:
        return too_often
    data = {"unit_code": code, "notice_id": notice_id, "text": values["text"], "anonymous": anonymous,
            "contact_name": None if anonymous else values["contact_name"],
            "contact_phone": None if anonymous else (values["contact_phone"] or None)}
    try:
        filed = calls.notify.file_public_objection(data)
    except ValidationFailed as exc:
        return objection_form(ctx, shown, notice, values, exc.fields, status=400)
    return ctx.render("public/objection_filed.html", board=shown, notice=notice, filed=filed)


def objection_form(ctx, shown, notice, values, errors, status: int = 200):
    return ctx.render("public/objection.html", status=status, board=shown, notice=notice, values=values,
                      errors=errors)


# --- 申请进度查询 ------------------------------------------------------------------------

@area.page("/status", methods=("GET", "POST"), login=False)
def status(ctx):
    if ctx.request.method == "GET":
        return ctx.render("public/status.html", number="", answer=None, message="")
    number = ctx.form.get("number", "").strip().lower()[:64]
    last4 = ctx.form.get("last4", "").strip().upper()
    too_often = limited(ctx, "status")
    if too_often is not None:
        return too_often
    answer = lookup(ctx, number, last4)
    if answer is None:
        return ctx.render("public/status.html", status=404, number=number, answer=None, message=NOT_FOUND_TEXT)
    return ctx.render("public/status.html", number=number, answer=answer, message="")


def application_checked(ctx, number: str, last4: str) -> dict | None:
    """intake's answer for an application number and the applicant's ID ending, or None — for
    an unknown number, a wrong ID ending and a malformed entry alike (the status and appeal pages)."""
    if not APPLICATION_NUMBER.match(number) or not ID_LAST4.match(last4):
        return None
    try:
        return public(ctx).intake.public_application_check({"application_id": number, "id_last4": last4})
    except (NotFound, ValidationFailed):
        return None


def lookup(ctx, number: str, last4: str) -> dict | None:
    """The step and its dates, or None (:func:`application_checked`)."""
    found = application_checked(ctx, number, last4)
    if found is None:
        return None
    try:
        review = public(ctx).review.public_status(found["application_id"])
    except NotFound:     # accepted, and review has not opened its file yet
        review = {"status": "submitted", "step": None}
    return {"accepted_on": found["accepted_on"], **{k: v for k, v in review.items() if k != "accepted_on"}}
