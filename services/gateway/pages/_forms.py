"""What the entry procedure's pages share: reading the repeated rows of a
form (members, incomes, participants …) into the services' input, showing a
refused submission again with each field's problem, and the Chinese names of
the input choices.

A form without a JavaScript build step has a fixed number of blank rows
(``ROWS``); a row left blank is not sent. A field's input is named
``<list>-<n>-<field>`` and the services' validation names the same field
``<list>.<n>.<field>``: :func:`field_errors` maps one to the other, so a
page shows each problem next to its input.
"""
from __future__ import annotations

from datetime import date

from shared.errors import Conflict, DibaoError, Forbidden, NotFound, ValidationFailed

#: typed refusals a form shows on its own page (with the person's input kept);
#: anything else becomes the console's error page
REFUSALS = (ValidationFailed, Conflict, Forbidden)

RELATIONS = {"head": "户主", "spouse": "配偶", "child": "子女", "parent": "父母", "grandchild": "孙子女",
             "grandparent": "祖父母", "sibling": "兄弟姐妹", "in_law": "姻亲", "other": "其他"}
LABOUR = {"full": "完全劳动能力", "partial": "部分劳动能力", "none": "无劳动能力"}
DISABILITY = {"none": "无", "grade1": "一级", "grade2": "二级", "grade3": "三级", "grade4": "四级"}
ILLNESS = {"none": "无", "chronic": "慢性病", "serious": "重病"}
EMPLOYMENT = {"employed": "就业", "flexible": "灵活就业", "unemployed": "失业", "farming": "务农",
              "student": "在校学生", "retired": "退休", "preschool": "学龄前", "none": "无"}
INCOME_SOURCES = {"wages": "工资性收入", "business": "经营性收入", "farming": "农业收入", "pension": "养老金",
                  "transfer": "转移性收入", "property": "财产性收入", "alimony": "赡养（抚养、扶养）费",
                  "other": "其他"}
ASSET_KINDS = {"house": "房产", "vehicle": "车辆", "savings": "存款", "securities": "有价证券", "land": "土地",
               "livestock": "牲畜", "other": "其他"}
AREA_TYPES = {"urban": "城镇", "rural": "农村"}
DOCUMENT_KINDS = {"application_form": "低保申请书", "household_register": "户口簿复印件",
                  "id_copies": "身份证复印件", "income_proof": "收入证明", "investigation_record": "入户调查表",
                  "evaluation_minutes": "民主评议记录", "notice_record": "公示记录",
                  "township_review": "乡镇（街道）审核意见", "approval_decision": "审批表（决定）",
                  "checkin_record": "续保登记", "reinvestigation_record": "复核调查", "other": "其他"}
PARTICIPANT_ROLES = {"representative": "居民代表", "officer": "工作人员", "panel": "评议小组成员", "other": "其他"}
DEPARTMENTS = {"civil_affairs": "民政", "finance": "财政", "justice": "司法", "police": "公安",
               "affairs_office": "党政办", "other": "其他"}
OPINIONS = {"agree": "同意", "disagree": "不同意"}
SEATS = {"deputy_director": "分管局长", "centre_director": "低保中心主任", "investigator": "入户调查人"}

LABELS = dict(RELATIONS=RELATIONS, LABOUR=LABOUR, DISABILITY=DISABILITY, ILLNESS=ILLNESS, EMPLOYMENT=EMPLOYMENT,
              INCOME_SOURCES=INCOME_SOURCES, ASSET_KINDS=ASSET_KINDS, AREA_TYPES=AREA_TYPES,
              DOCUMENT_KINDS=DOCUMENT_KINDS, PARTICIPANT_ROLES=PARTICIPANT_ROLES, DEPARTMENTS=DEPARTMENTS,
              OPINIONS=OPINIONS, SEATS=SEATS)


def text(form, name: str) -> str:
    return (form.get(name) or "").strip()


def optional(form, name: str):
    """The field's text, or None when left blank (the service's default applies)."""
    return text(form, name) or None


def checked(form, name: str) -> bool:
    return form.get(name) in ("on", "1", "true", "yes")


def rows(form, prefix: str, count: int, fields: tuple[str, ...], required: tuple[str, ...]) -> list[tuple[int, dict]]:
    """The filled rows ``<prefix>-<n>-<field>`` (n < count) as (row number, {field: text}):
    a row whose ``required`` fields are all blank is skipped."""
    found = []
    for n in range(count):
        row = {f: text(form, f"{prefix}-{n}-{f}") for f in fields}
        if any(row[f] for f in required):
            found.append((n, row))
    return found


def field_errors(error: DibaoError, renumber: dict[str, list[int]] | None = None) -> dict[str, list[str]]:
    """The service's field names (``members.2.resident_id``) as the form's
    input names (``members-<row>-resident_id``, ``renumber`` mapping the list's
    index back to the form row it came from, blank rows having been skipped)."""
    fields = (error.details or {}).get("fields") if isinstance(error, ValidationFailed) else None
    out: dict[str, list[str]] = {}
    for name, problems in (fields or {}).items():
        parts = str(name).split(".")
        if len(parts) >= 2 and parts[1].isdigit() and renumber and parts[0] in renumber:
            index = int(parts[1])
            rows_of = renumber[parts[0]]
            parts[1] = str(rows_of[index]) if index < len(rows_of) else parts[1]
        key = "-".join(parts)
        out[key] = problems if isinstance(problems, list) else [str(problems)]
    return out


def refusal_text(error: DibaoError) -> str:
    """One line saying why the submission was refused (Chinese first, the service's words after)."""
    if isinstance(error, ValidationFailed):
        return "填写有误，请检查标出的项目。"
    if isinstance(error, Conflict):
        return f"无法办理：{error.message}"
    if isinstance(error, Forbidden):
        return f"无权办理：{error.message}"
    if isinstance(error, NotFound):
        return "未找到该记录。"
    return error.message


def today_text(ctx) -> str:
    return ctx.today().isoformat() if hasattr(ctx, "today") else date.today().isoformat()


def refused(exc: BaseException) -> bool:
    """A refusal the form shows on its page (not a login that ended: that goes to /login)."""
    from services.gateway.exceptions import is_token_refusal

    return isinstance(exc, REFUSALS) and not is_token_refusal(exc)
