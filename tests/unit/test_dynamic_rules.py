"""The pure dynamic-management rules (services/review/rules.py), per policy,
and the set-based month-end SQL checked against them on random histories."""
from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.review import month_end, rules
from services.review.models import Base, Case, CaseProposal, HouseholdCheckIn
from shared.clock import FileClock, FixedClock, SystemClock, clock_from_spec
from shared.crypto import FieldCipher, configure
from shared.db import ServiceDatabase
from shared.errors import Conflict, ValidationFailed
from shared.policy import load_policy

JX, NAT = load_policy("jiangxia"), load_policy("national2021")


def test_month_evaluated_is_the_last_month_ended():
    assert rules.month_evaluated(date(2027, 4, 30)) == "2027-04"
    assert rules.month_evaluated(date(2027, 5, 3)) == "2027-04"
    assert rules.month_evaluated(date(2027, 1, 15)) == "2026-12"
    assert rules.add_months_to_month("2027-12", 1) == "2028-01"
    assert rules.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)


def test_two_missed_checkins_in_a_row():
    assert rules.two_missed_checkins_in_a_row("2027-02", "2027-04", {"2027-02"}, JX) == "checkins:2027-03..2027-04"
    assert rules.two_missed_checkins_in_a_row("2027-02", "2027-04", {"2027-03"}, JX) is None
    assert rules.two_missed_checkins_in_a_row("2027-04", "2027-04", set(), JX) is None   # one month paid so far
    assert rules.two_missed_checkins_in_a_row("2027-02", "2027-04", set(), NAT) is None  # no such rule


def test_three_missed_checkins_in_a_year_counts_the_calendar_year_only():
    checked = {"2027-02", "2027-04"}
    assert rules.three_missed_checkins_in_a_year("2026-11", "2027-05", checked, JX) == "checkins:2027"
    assert rules.three_missed_checkins_in_a_year("2026-11", "2027-03", checked, JX) is None   # Jan and Mar
    assert rules.three_missed_checkins_in_a_year("2027-03", "2027-05", checked, JX) is None   # Mar and May
    assert rules.three_missed_checkins_in_a_year("2026-01", "2027-05", checked, NAT) is None


def test_labour_rules_per_policy():
    assert rules.unexcused_labour_absence(1, JX) and not rules.unexcused_labour_absence(0, JX)
    assert not rules.unexcused_labour_absence(5, NAT)
    assert rules.refused_suitable_work(3, NAT) and not rules.refused_suitable_work(2, NAT)
    assert not rules.refused_suitable_work(9, JX)


def test_income_rule_cancels_above_the_standard_with_the_policys_gradual_exit():
    standard = Decimal("820.00")
    assert rules.income_rule(NAT, standard, 2, Decimal("1700.00"), Decimal("500.00"), works=True) == (
        "income_above_standard", "cancel", 6)
    assert rules.income_rule(NAT, standard, 2, Decimal("1640.00"), Decimal("500.00"), works=False) == (
        "income_above_standard", "cancel", 0)
    assert rules.income_rule(JX, standard, 2, Decimal("1700.00"), Decimal("500.00"), works=True) == (
        "income_above_standard", "cancel", 0)
    assert rules.income_rule(JX, standard, 2, Decimal("1000.00"), Decimal("500.00"), works=True) == (
        "income_changed", "adjust", 0)
    assert rules.income_rule(JX, standard, 2, Decimal("1140.00"), Decimal("500.00"), works=True) is None
    assert rules.benefit_gap(standard, 2, Decimal("1700.00")) == Decimal("-60.00")


def test_cancellation_months_and_gradual_exit():
    assert rules.cancellation_months(date(2027, 3, 15), 0) == ("2027-04", None)
    assert rules.cancellation_months(date(2027, 3, 15), 6) == ("2027-10", "2027-09")


def test_death_review_within_three_months_national_only():
    assert rules.death_review_due(date(2027, 2, 8), date(2027, 7, 11), NAT) == date(2027, 5, 8)
    assert rules.death_review_due(date(2027, 2, 8), date(2027, 4, 1), NAT) is None   # already sooner
    assert rules.death_review_due(date(2027, 2, 8), date(2027, 7, 11), JX) is None


def test_approvals_follow_the_policy_by_distinct_people():
    assert rules.next_approval(JX, []) == "township_officer"
    assert rules.next_approval(JX, [{"user": "a"}]) == "centre_director"
    assert rules.next_approval(NAT, [{"user": "a"}]) == "district_officer"
    assert rules.next_approval(NAT, [{"user": "a"}, {"user": "b"}]) is None
    with pytest.raises(Conflict):
        rules.approver_is_a_new_person("a", "rule:x", [{"user": "a"}])
    with pytest.raises(Conflict):
        rules.approver_is_a_new_person("a", "a", [])


def test_reasons_categories_and_campaign_findings_are_checked():
    with pytest.raises(ValidationFailed):
        rules.has_reason("  ")
    rules.category_is_known("unstable", JX)
    with pytest.raises(ValidationFailed):
        rules.category_is_known("unstable", NAT)
    with pytest.raises(ValidationFailed):
        rules.campaign_result_needs("raised", None, None)
    with pytest.raises(ValidationFailed):
        rules.campaign_result_needs("raised", Decimal("10"), "lowered")


def test_clock_specs(tmp_path):
    assert isinstance(clock_from_spec("system"), SystemClock)
    assert clock_from_spec("fixed:2027-03-01").today() == date(2027, 3, 1)
    clock = clock_from_spec(f"file:{tmp_path}/clock")
    assert isinstance(clock, FileClock) and clock.today() == date.today()   # no file yet: the machine's date
    clock.set(date(2028, 2, 29))
    assert clock.today() == date(2028, 2, 29) and FixedClock(date(2027, 1, 1)).today() == date(2027, 1, 1)
    with pytest.raises(ValueError):
        clock_from_spec("tomorrow")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_month_end_sql_agrees_with_the_pure_checkin_rules(tmp_path, seed):
    """The set-based form proposes for exactly the cases the pure rules name."""
    configure(FieldCipher(b"k" * 32))
    db = ServiceDatabase("review", f"sqlite:///{tmp_path}/review.db", Base.metadata, None)
    db.migrate()
    rnd = random.Random(seed)
    month = "2027-06"
    histories = {}
    with db.session_factory() as session:
        for n in range(200):
            start = rules.add_months_to_month("2026-10", rnd.randint(0, 8))
            checked = {m for m in (rules.add_months_to_month("2026-10", k) for k in range(9))
                       if m >= start and rnd.random() < 0.8}
            case_id = f"case-{n}"
            histories[case_id] = (start, checked)
            session.add(Case(id=case_id, application_id=f"app-{n}", household_id=f"hh-{n}",
                             community_code="420115001001", township_code="420115001", area_type="urban",
                             household_size=2, standard=Decimal("820.00"), verified_income=Decimal("0"),
                             monthly_benefit=Decimal("1640.00"), category="stable", start_month=start,
                             next_rereview_on=date(2028, 1, 1), approved_on=date(2026, 9, 1), policy="jiangxia"))
            session.add_all(HouseholdCheckIn(household_id=f"hh-{n}", month=m) for m in checked)
        session.commit()
    with db.unit_of_work() as uow:
        month_end.run(uow, JX, date(2027, 6, 30), date(2027, 7, 1))
    with db.session_factory() as session:
        made = {(p.case_id, p.rule) for p in session.scalars(sa.select(CaseProposal))}
    expected = set()
    for case_id, (start, checked) in histories.items():
        if rules.two_missed_checkins_in_a_row(start, month, checked, JX):
            expected.add((case_id, rules.RULE_TWO_IN_A_ROW))
        elif rules.three_missed_checkins_in_a_year(start, month, checked, JX):
            expected.add((case_id, rules.RULE_THREE_IN_A_YEAR))   # one cancellation pending per case
    assert made == expected and expected
    db.dispose()


def test_the_household_is_told_what_changes_from_when_and_why():
    from services.notify.rendering import decision_text, review_reminder_text

    subject, text = decision_text("case_cancelled", {
        "effective_month": "2027-10", "gradual_exit_until": "2027-09", "reason": "家庭人均收入超过当地低保标准"}, "张三")
    assert subject == "低保待遇停止" and "2027年9月" in text and "2027年10月起停发" in text and "收入超过" in text
    _, text = decision_text("case_cancelled", {"effective_month": "2027-04", "gradual_exit_until": None,
                                                "reason": "连续2个月未续保登记"}, "张三")
    assert "自2027年4月起停发保障金" in text and "申请复核" in text
    _, text = decision_text("case_adjusted", {"effective_month": "2027-03", "direction": "lowered",
                                              "new_benefit": Decimal("1140.00"), "old_benefit": Decimal("1319.50"),
                                              "household_size": 2, "reason": "收入变化"}, "张三")
    assert "自2027年3月起降低为1140.00元（原1319.50元）" in text
    assert "2027年4月11日" in review_reminder_text({"category": "unstable", "due_on": date(2027, 4, 11)})
