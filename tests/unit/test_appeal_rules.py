"""The appeal (复核) rules, pure: the period per policy (working days across a holiday, or days),
one appeal per decision, the uninvolved decider (by user id and by name), the reason, lateness."""
from datetime import date

import pytest

from services.review import appeal_rules as rules
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.policy import load_policy
from shared.workdays import WorkdayCalendar

cal = WorkdayCalendar()


@pytest.mark.parametrize("name", ["jiangxia", "national2021"])
def test_both_policies_set_an_appeal_period_a_deadline_and_deciders(name):
    policy = load_policy(name)
    assert policy.appeal_period > 0 and policy.appeal_decision_workdays > 0 and policy.appeal_deciders
    assert policy.appeal_reopens_at is None or policy.step(policy.appeal_reopens_at)


def test_rule_national_period_counts_working_days_across_national_day():
    national = load_policy("national2021")          # 10 working days
    decided = date(2025, 9, 30)                     # 1–8 October off, Saturday 11 October a make-up working day
    # 9, 10, 11 (Sat), 13–17, 20, 21 October: ten calendar days would have ended on 10 October
    last = rules.appeal_within_period(national, decided, date(2025, 10, 21), cal)
    assert last == date(2025, 10, 21)
    with pytest.raises(Conflict) as late:
        rules.appeal_within_period(national, decided, date(2025, 10, 22), cal)
    assert late.value.details == {"rule": "appeal_within_period", "period_ended_on": "2025-10-21"}


def test_rule_seed_period_counts_calendar_days():
    seed = load_policy("jiangxia")                  # 15 days
    assert rules.appeal_within_period(seed, date(2025, 9, 30), date(2025, 10, 15), cal) == date(2025, 10, 15)
    with pytest.raises(Conflict):
        rules.appeal_within_period(seed, date(2025, 9, 30), date(2025, 10, 16), cal)


def test_rule_one_appeal_per_decision():
    rules.one_appeal_per_decision(None)
    for status in ("open", "upheld", "dismissed"):
        with pytest.raises(Conflict) as twice:
            rules.one_appeal_per_decision(status)
        assert twice.value.details["rule"] == "one_appeal_per_decision"


def test_rule_decided_by_someone_uninvolved_by_user_and_by_name():
    took_part = [{"part": "approval", "user": "zhou.director", "name": "周主任"},
                 {"part": "township_review", "user": None, "name": "陈主任"}]
    rules.decided_by_someone_uninvolved("sun.deputy", "孙局长", took_part)
    for user, name, part in (("zhou.director", "另一个名字", "approval"), ("ma.deputy", "陈主任", "township_review")):
        with pytest.raises(Forbidden) as refused:
            rules.decided_by_someone_uninvolved(user, name, took_part)
        assert refused.value.details == {"rule": "decided_by_someone_uninvolved", "part": part}


def test_rule_a_decision_states_its_reason_and_lateness_counts_open_appeals_only():
    for blank in (None, "", "  \n"):
        with pytest.raises(ValidationFailed):
            rules.decision_has_reason(blank)
    assert rules.decision_has_reason(" 原决定有误 ") == "原决定有误"
    assert rules.appeal_overdue("open", date(2025, 10, 16), date(2025, 10, 17))
    assert not rules.appeal_overdue("open", date(2025, 10, 16), date(2025, 10, 16))
    assert not rules.appeal_overdue("upheld", date(2025, 10, 16), date(2025, 11, 1))


def test_the_test_panel_and_committee_share_no_name_with_the_staff_registry():
    """tests/review_helpers.py's evaluation panel and township committee are named in the record by
    name only; a namesake on the staff registry would count as having taken part in every test
    rejection (by name) and could never decide an appeal of one."""
    from tests.helpers import STAFF
    from tests.review_helpers import COMMITTEE, PANEL

    named = [{"part": "evaluation", "user": None, "name": p["name"]} for p in PANEL]
    named += [{"part": "township_review", "user": None, "name": m["name"]} for m in COMMITTEE]
    for person in STAFF:
        rules.decided_by_someone_uninvolved(person["user"], person["name"], named)
