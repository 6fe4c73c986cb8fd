"""What the console calls things (Chinese), and the masked forms it shows.

The codes are the services' own (steps of the shipped policies, statuses,
roles, levels); an unknown code is shown as it is.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from shared.masking import mask_name, mask_resident_id

STEP = {
    "community_evaluation": "社区民主评议",
    "community_notice": "社区公示",
    "township_review": "乡镇（街道）评审",
    "township_opinion": "乡镇（街道）初审",
    "township_notice": "乡镇（街道）公示",
    "joint_review": "区低保中心会审",
    "result_notice": "结果公布",
}
STATUS = {
    "submitted": "已受理，待入户调查",
    "investigated": "已入户调查",
    "awaiting_investigation": "待入户调查",
    "in_review": "审核中",
    "awaiting_reinvestigation": "有异议，待重新调查",
    "approved": "已批准",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
ROLE = {
    "community_officer": "社区低保专干",
    "community_panel": "社区评议小组成员",
    "township_officer": "乡镇（街道）低保办",
    "township_committee": "乡镇（街道）评审委员",
    "district_officer": "区低保中心专干",
    "centre_director": "低保中心主任",
    "deputy_director": "分管局长",
    "finance_officer": "财务人员",
    "auditor": "监督审计",
    "partner_bureau": "协作部门",
    "system_admin": "系统管理员",
    "security_admin": "安全管理员",
    "audit_admin": "安全审计员",
}
LEVEL = {"community": "社区", "township": "乡镇（街道）", "district": "区"}
RELATION = {"head": "户主", "spouse": "配偶", "child": "子女", "parent": "父母", "grandchild": "孙子女",
            "grandparent": "祖父母", "sibling": "兄弟姐妹", "in_law": "姻亲", "other": "其他"}
LABOUR = {"full": "完全劳动能力", "partial": "部分劳动能力", "none": "无劳动能力"}
AREA = {"urban": "城镇", "rural": "农村"}


def step_label(step: str | None) -> str:
    return STEP.get(step, step) if step else "—"


def status_label(status: str | None) -> str:
    return STATUS.get(status, status) if status else "—"


def role_label(role: str | None) -> str:
    return ROLE.get(role, role) if role else "—"


def level_label(level: str | None) -> str:
    return LEVEL.get(level, level) if level else "—"


def masked_id(value: str | None) -> str:
    """A resident ID number as the console shows it: first 3 and last 4 (脱敏)."""
    return mask_resident_id(value) or "—"


def masked_name(value: str | None) -> str:
    return mask_name(value) or "—"


def money(value) -> str:
    """Yuan with two decimals (from the services' Decimal strings)."""
    if value is None or value == "":
        return "—"
    try:
        return f"{Decimal(str(value)):,.2f} 元"
    except InvalidOperation:
        return str(value)


def date_text(value) -> str:
    if not value:
        return "—"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)[:10]


# --- dynamic management (动态管理), check-ins and labour -------------------------------
RULE = {"two_missed_checkins_in_a_row": "连续未续保登记", "three_missed_checkins_in_a_year": "年内多次未续保登记",
        "unexcused_labour_absence": "无故不参加公益劳动", "refused_suitable_work": "拒绝适当工作",
        "income_above_standard": "收入超过标准", "income_changed": "收入或人口变化",
        "member_death_review": "家庭成员死亡（复核提前）", "campaign_inspection": "入户清查", "manual": "人工提出",
        "verification_change": "核对发现变化"}
ACTION = {"adjust": "调整保障金", "cancel": "停保（注销）", "stop_share": "停发个人份额", "rereview": "复核"}
PROPOSAL_STATUS = {"pending": "待审批", "approved": "已批准", "rejected": "已驳回", "applied": "已执行",
                   "withdrawn": "已撤销"}
CASE_STATUS = {"active": "保障中", "cancelled": "已停保"}
CATEGORY = {"long_term": "长期保障户（A类）", "stable": "基本稳定户（B类）", "unstable": "变动户（C类）",
            "able_to_work": "有劳动能力户"}
CAMPAIGN_RESULT = {"kept": "维持", "raised": "提高保障金", "lowered": "降低保障金", "cancelled": "停保",
                   "wrongly_included": "错保（不符合条件）"}
ATTENDANCE = {"attended": "参加", "excused": "请假（有正当理由）", "unexcused": "无故缺席", "refused": "拒绝适当工作"}
