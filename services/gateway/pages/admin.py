"""账号管理: the security administrator's accounts — add, roles (grant,
revoke), unlock, disable / enable, reset the password or the one-time-code
secret. Every action is identity's RPC as the logged-in administrator
(identity checks the role and records the command); the actions are POST
forms naming the account in the body, never in a URL. New credentials
(one-time password, TOTP secret) are shown once, on the answer to the POST
(``Cache-Control: no-store``), to be handed over in person.
"""
from __future__ import annotations

from services.gateway.pages.base import Area, Nav
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.identity import Role

ADMIN_ROLES = (Role.SECURITY_ADMIN,)
STATUS = {"active": "正常", "disabled": "已停用", "locked": "已锁定"}
#: what each form does: identity's RPC and its Chinese confirmation
ACTIONS = {
    "unlock": ("unlock_account", "已解锁"),
    "disable": ("disable_account", "已停用"),
    "enable": ("enable_account", "已启用"),
    "reset_password": ("reset_password", "已重置密码"),
    "reset_totp": ("reset_totp", "已重置动态口令密钥"),
}

area = Area("admin", nav=[Nav("账号管理", "/admin/accounts", roles=ADMIN_ROLES, order=60)])


def _page(ctx, status=200, message=None, alert=None, credentials=None, errors=None, given=None):
    accounts = ctx.calls.identity.list_accounts()
    accounts.sort(key=lambda a: (a["unit"], a["user"]))
    return ctx.render("admin/accounts.html", status=status, accounts=accounts, message=message, alert=alert,
                      credentials=credentials, errors=errors or {}, given=given or {}, status_label_of=STATUS,
                      roles=[r.value for r in Role])


def _refusal(exc) -> str:
    if isinstance(exc, ValidationFailed):
        return "填写有误：" + "；".join(f"{k} {'；'.join(map(str, v))}" for k, v in exc.fields.items())
    if isinstance(exc, Forbidden):
        return "无权办理：您的角色不允许此操作（例如不能修改自己的账号）。"
    if isinstance(exc, NotFound):
        return "没有这个账号。"
    return "当前状态下不能办理此项。"


@area.page("/admin/accounts", roles=ADMIN_ROLES)
def accounts(ctx):
    return _page(ctx)


@area.page("/admin/accounts", methods=("POST",), roles=ADMIN_ROLES)
def add_account(ctx):
    given = {"user": ctx.form.get("user", "").strip(), "name": ctx.form.get("name", "").strip(),
             "unit": ctx.form.get("unit", "").strip(), "roles": ctx.form.getlist("roles")}
    try:
        credentials = ctx.calls.identity.add_account(given)
    except (ValidationFailed, Conflict, Forbidden, NotFound) as exc:
        fields = exc.fields if isinstance(exc, ValidationFailed) else {}
        return _page(ctx, status=400 if fields else 409, alert=_refusal(exc), errors=fields, given=given)
    return _page(ctx, message=f"已添加账号 {given['user']}", credentials=credentials)


@area.page("/admin/accounts/action", methods=("POST",), roles=ADMIN_ROLES)
def account_action(ctx):
    user, action = ctx.form.get("user", "").strip(), ctx.form.get("action", "")
    if action not in ACTIONS and action not in ("grant", "revoke"):
        return _page(ctx, status=400, alert="不支持的操作。")
    try:
        if action in ("grant", "revoke"):
            method = "grant_role" if action == "grant" else "revoke_role"
            getattr(ctx.calls.identity, method)(user, ctx.form.get("role", ""))
            out, done = None, "已授予角色" if action == "grant" else "已撤销角色"
        else:
            method, done = ACTIONS[action]
            out = getattr(ctx.calls.identity, method)(user)
    except (ValidationFailed, Conflict, Forbidden, NotFound) as exc:
        status = {ValidationFailed: 400, Forbidden: 403, NotFound: 404}.get(type(exc), 409)
        return _page(ctx, status=status, alert=_refusal(exc))
    credentials = out if action.startswith("reset") else None
    return _page(ctx, message=f"{user}：{done}", credentials=credentials)
