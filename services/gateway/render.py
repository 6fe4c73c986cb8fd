"""Server-rendered pages: one Jinja2 environment, escaping everywhere.

Templates live in ``services/gateway/templates/<area>/`` and extend
``base.html``; static files (CSS, the few scripts — never inline: the
Content-Security-Policy allows ``script-src 'self'`` only) in
``services/gateway/static/``. Autoescaping is on for every template,
whatever its name.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from werkzeug.wrappers import Response

from services.gateway import labels
from services.gateway.exceptions import body_of, status_of
from shared.errors import DibaoError

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(labels=labels, step_label=labels.step_label, status_label=labels.status_label,
                       role_label=labels.role_label, level_label=labels.level_label,
                       masked_id=labels.masked_id, masked_name=labels.masked_name, money=labels.money,
                       date_text=labels.date_text)
    return env


def render_text(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def html(text: str, status: int = 200, headers=None) -> Response:
    return Response(text, status=status, headers=headers, mimetype="text/html")


def page(template: str, status: int = 200, headers=None, **context) -> Response:
    """A whole page: ``template`` (extending base.html) with ``context``.
    The base layout needs ``me`` (the person or None), ``nav`` and ``csrf_token``."""
    context.setdefault("me", None)
    context.setdefault("nav", [])
    context.setdefault("csrf_token", "")
    context.setdefault("current", "")
    return html(render_text(template, **context), status, headers)


#: what each error says on the console (Chinese), by its code
ERROR_TEXT = {
    "validation_failed": ("填写有误", "请检查标出的项目后重新提交。"),
    "unauthenticated": ("请先登录", "登录已失效或尚未登录。"),
    "forbidden": ("无权访问", "您的角色或辖区不允许查看或办理此项。"),
    "not_found": ("未找到", "没有这个页面或记录。"),
    "method_not_allowed": ("不支持的操作", "此页面不支持这种请求。"),
    "conflict": ("无法办理", "当前状态下不能办理此项。"),
    "payload_too_large": ("内容过大", "提交的内容超过了允许的大小。"),
    "service_unavailable": ("暂时无法办理", "系统服务暂时没有响应，请稍后重试。"),
    "operational_problem": ("暂时无法办理", "系统暂时无法完成此操作，请联系系统管理员。"),
    "internal_error": ("系统错误", "系统出现错误，请联系系统管理员并提供下面的编号。"),
}


def error_page(error: DibaoError, me=None, nav=(), csrf_token: str = "", status: int | None = None,
               title: str | None = None, text: str | None = None) -> Response:
    """The console's page for a typed error (the same codes as the API's body)."""
    default_title, default_text = ERROR_TEXT.get(error.code, ("错误", ""))
    return page("errors/error.html", status=status or status_of(error), error=body_of(error),
                title=title or default_title, text=text or default_text, me=me, nav=list(nav),
                csrf_token=csrf_token)
