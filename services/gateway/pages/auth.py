"""登录 / 修改密码 / 退出: the session is identity's.

- ``/login``: user id, password and the one-time code (TOTP) → ``identity.login``;
  every failure is the same answer (identity's ``login_failed``), the form
  keeps only the user id.
- A login whose password must change (first login, reset, 90 days) is sent
  to ``/password`` with identity's password-change token in its own cookie;
  the new password gives the full session.
- ``/password``: change one's password (logged in, or as above).
- ``/logout`` (POST): ``identity.logout`` ends the session everywhere; the cookie goes.
"""
from __future__ import annotations

from services.gateway.auth import PASSWORD_CHANGE_COOKIE
from services.gateway.exceptions import public_error
from services.gateway.pages.base import Area, Nav
from shared.errors import Forbidden, ValidationFailed

area = Area("auth", nav=[Nav("修改密码", "/password", order=90)])

LOGIN_FAILED = "登录失败：请检查用户名、密码和动态验证码（多次失败后账号将被暂时锁定，可请安全管理员解锁）。"


@area.page("/login", methods=("GET", "POST"), login=False)
def login(ctx):
    if ctx.actor is not None:
        return ctx.redirect("/")
    if ctx.request.method == "GET":
        return ctx.render("auth/login.html", user="", message="")
    form = ctx.form
    user = form.get("user", "").strip()
    try:
        answer = ctx.calls.anonymous.identity.login(user, form.get("password", ""), form.get("otp", "").strip() or None)
    except (Forbidden, ValidationFailed):
        return ctx.render("auth/login.html", status=401, user=user[:64], message=LOGIN_FAILED)
    if answer.get("must_change_password"):
        response = ctx.redirect("/password")
        ctx.sessions.set_password_change(response, ctx.request, answer["token"])
        return response
    response = ctx.redirect("/")
    ctx.sessions.set_session(response, ctx.request, answer["token"], answer.get("expires_at"))
    return response


@area.page("/password", methods=("GET", "POST"), login=False)
def change_password(ctx):
    must_change = ctx.request.cookies.get(PASSWORD_CHANGE_COOKIE)
    if ctx.actor is None and not must_change:
        return ctx.redirect("/login")
    if ctx.request.method == "GET":
        return ctx.render("auth/password.html", must_change=ctx.actor is None, message="", fields={})
    form = ctx.form
    new = form.get("new_password", "")
    if new != form.get("confirm_password", ""):
        return ctx.render("auth/password.html", status=400, must_change=ctx.actor is None,
                          message="两次输入的新密码不一致。", fields={"confirm_password": ["两次输入不一致"]})
    identity = ctx.calls.identity if ctx.actor is not None else ctx.calls.with_token(must_change).identity
    try:
        answer = identity.change_password(form.get("old_password", ""), new)
    except ValidationFailed as exc:
        return ctx.render("auth/password.html", status=400, must_change=ctx.actor is None,
                          message="新密码不符合要求：至少 12 位，包含大写字母、小写字母、数字、符号中的三类，且不含用户名。",
                          fields=exc.fields)
    except Forbidden as exc:
        error = public_error(exc)
        if error.code == "unauthenticated":   # the 10 minutes are over, or the session ended
            response = ctx.redirect("/login")
            ctx.sessions.clear(response, ctx.request)
            return response
        return ctx.render("auth/password.html", status=403, must_change=ctx.actor is None,
                          message="原密码不正确。", fields={"old_password": ["原密码不正确"]})
    ctx.sessions.ended(ctx.actor)
    response = ctx.redirect("/")
    ctx.sessions.set_session(response, ctx.request, answer["token"], answer.get("expires_at"))
    return response


@area.page("/logout", methods=("POST",))
def logout(ctx):
    try:
        ctx.calls.identity.logout()
    except Forbidden:
        pass   # already ended: forget it here all the same
    ctx.sessions.ended(ctx.actor)
    response = ctx.redirect("/login")
    ctx.sessions.clear(response, ctx.request)
    return response
