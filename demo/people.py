"""The demo's people and waits: who the sample district's staff and households are, what the
demo did for each household, and waiting for the steps that cross services.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

from cli.common import fail


REASONS = ["因病致贫", "因残致贫", "失业无收入", "年老无依", "单亲抚养子女", "家庭成员重病"]
FINDINGS = ["家中无贵重物品，住房简陋", "户主长期患病，医疗支出大", "无固定收入，靠亲属接济",
            "住房老旧，家电简单", "子女就学，收入微薄"]
AREA = {"urban": "城镇", "rural": "农村"}
STAGE_LABEL = {"registered": "登记", "applied": "申请", "investigated": "调查"}
STATUS_LABEL = {"submitted": "已受理", "investigated": "已调查"}
REVIEW_LABEL = {"approved": "[green]已批准[/green]", "rejected": "[red]未通过[/red]", "in_review": "审核中",
                "awaiting_investigation": "待调查", "awaiting_reinvestigation": "[yellow]待重新调查[/yellow]"}
#: seconds the demo waits for an asynchronous step (an event crossing services)
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.1
#: the township review committee (乡镇街低保评审委员会): departments besides civil affairs
COMMITTEE_DEPARTMENTS = ("finance", "justice", "police", "affairs_office")
OBJECTION_TEXT = "反映该户子女在外务工，每月寄钱回家，申请时未如实申报。"


@dataclass
class Person:
    user: str
    name: str
    role: str
    unit: str


@dataclass
class HouseholdRun:
    """What the demo did for one household (for the tables)."""

    community: object
    household_id: str
    head_name: str
    head_id: str
    size: int
    application_id: str | None = None
    #: what the officer registered (intake's household schema) and intake's member ids, for later updates
    data: dict | None = None
    member_ids: list[str] = field(default_factory=list)
    checked_in: bool = False
    documents: list[str] = field(default_factory=list)
    investigation: dict | None = None       # what the demo sent to intake.record_investigation
    investigations: int = 0
    #: the review service's latest answer (review.get_application)
    review: dict | None = None
    notice: dict | None = None               # the notice now posted for it
    seen_notices: set[str] = field(default_factory=set)
    path: list[str] = field(default_factory=list)   # what happened to it, step by step

    @property
    def investigated(self) -> bool:
        return self.investigations > 0

    @property
    def case(self) -> dict | None:
        return (self.review or {}).get("case")


def workdays_before(calendar, day: date, n: int) -> date:
    current = day
    while n > 0:
        current -= timedelta(days=1)
        if calendar.is_workday(current):
            n -= 1
    return current


def pick_communities(divisions, district: str, households: int) -> list:
    """Several communities, urban and rural alternating (≈ 4 households each)."""
    communities = divisions.communities(within=district)
    urban = [c for c in communities if c.area_type == "urban"]
    rural = [c for c in communities if c.area_type != "urban"]
    mixed = []
    for i in range(max(len(urban), len(rural))):
        mixed += [c for c in (urban[i:i + 1] + rural[i:i + 1])]
    count = min(len(mixed), max(2, math.ceil(households / 4)))
    return mixed[:count]


class Waits:
    """The demo waiting for the asynchronous steps (events crossing services), mixed into :class:`demo.entry.Demo`."""

    def wait(self, check, what: str, timeout: float = WAIT_SECONDS):
        """Poll ``check()`` (short sleeps) until it returns something truthy;
        ``check`` returns (value, description of what is still missing)."""
        import eventlet

        deadline = time.monotonic() + timeout
        while True:
            value, missing = check()
            if value:
                return value
            if time.monotonic() > deadline:
                fail(f"timed out after {timeout:.0f} s waiting for {what}: {missing} — are intake, review and "
                     f"notify all running on this broker? (`dibao dlq list` shows events they refused)")
            eventlet.sleep(POLL_SECONDS)

    def wait_reviews(self, district, runs: list[HouseholdRun], ready, what: str) -> None:
        """Until ``ready(run, review.get_application(...))`` holds for every run."""
        from shared.errors import NotFound

        pending = list(runs)

        def check():
            still = []
            for r in pending:
                try:
                    f = district.review.get_application(r.application_id)
                except NotFound:
                    still.append((r, None))
                    continue
                if ready(r, f):
                    r.review = f
                else:
                    still.append((r, f))
            pending[:] = [r for r, _ in still]
            if not still:
                return True, ""
            r, f = still[0]
            state = f"{f['status']} at {f['step']}" if f else "not known to review yet"
            return False, f"{len(still)} of {len(runs)} application(s) not there yet (e.g. {r.application_id}: {state})"

        self.wait(check, what)

    def wait_notices(self, district, runs: list[HouseholdRun]) -> None:
        """Until notify has posted the notice each run's open step asked for."""
        def check():
            posted: dict[tuple, dict] = {}
            for n in district.notify.list_notices(self.district, True):
                posted[(n["application_id"], n["stage"], n["id"] in seen.get(n["application_id"], ()))] = n
            missing = []
            for r in runs:
                notice = posted.get((r.application_id, r.review["step"], False))
                if notice is None:
                    missing.append(r)
                else:
                    r.notice = notice
            if missing:
                return False, (f"{len(missing)} of {len(runs)} notice(s) not posted yet "
                               f"(e.g. {missing[0].application_id} at {missing[0].review['step']})")
            return True, ""

        seen = {r.application_id: r.seen_notices for r in runs}
        self.wait(check, "notify to post the notices review asked for (review's notice_requested)")

    def wait_results(self, district, approved: list[HouseholdRun]) -> None:
        """Until the approved households' results are posted (张榜公布)."""
        def check():
            posted = {n["application_id"] for n in district.notify.list_notices(self.district, True)
                      if n["stage"] == "result"}
            missing = [r for r in approved if r.application_id not in posted]
            return (not missing), (f"{len(missing)} result(s) not posted yet" if missing else "")

        if approved:
            self.wait(check, "notify to post the approved households' results (张榜公布)")
