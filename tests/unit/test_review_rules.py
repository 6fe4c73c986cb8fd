"""Each review rule of DESIGN §2.6, by name, under each policy (pure rules;
the integration tests run the same rules over the bus)."""
from datetime import date
from decimal import Decimal

import pytest

from services.review import rules
from shared.errors import Conflict, ValidationFailed
from shared.policy import load_policy
from shared.workdays import WorkdayCalendar

JIANGXIA, NATIONAL = load_policy("jiangxia"), load_policy("national2021")
REP = {"name": "代表", "role": "representative", "signed": True}
OFFICER = {"name": "专干", "role": "officer", "signed": True}


def test_rule_community_evaluation_always_held_under_seed_practice():
    step = JIANGXIA.step("community_evaluation")
    with pytest.raises(Conflict):
        rules.evaluation_may_be_skipped(step, objections=0)


def test_rule_national_item_24_evaluation_may_be_skipped_only_without_objection():
    step = NATIONAL.step("community_evaluation")
    rules.evaluation_may_be_skipped(step, objections=0)
    with pytest.raises(Conflict):
        rules.evaluation_may_be_skipped(step, objections=1)


def test_rule_2012_representatives_at_least_two_thirds_of_participants():
    rules.representatives_share_suffices([REP, REP, OFFICER], NATIONAL)
    with pytest.raises(ValidationFailed):
        rules.representatives_share_suffices([REP, OFFICER, OFFICER], NATIONAL)
    rules.representatives_share_suffices([REP, OFFICER, OFFICER], JIANGXIA)  # no such rule in the seed


def test_rule_every_evaluation_participant_signs():
    with pytest.raises(ValidationFailed) as err:
        rules.participants_all_signed([REP, dict(OFFICER, signed=False)])
    assert "participants.1.signed" in err.value.fields


def test_rule_seed_notices_after_community_evaluation_and_before_reporting_to_district():
    kinds = [(s.name, s.kind) for s in JIANGXIA.review_steps]
    assert kinds == [("community_evaluation", "evaluation"), ("community_notice", "notice"),
                     ("township_review", "committee"), ("township_notice", "notice"),
                     ("joint_review", "joint_review")]
    assert all(s.notice_days == 7 for s in JIANGXIA.review_steps if s.kind == "notice")


def test_rule_national_one_seven_day_notice_of_the_township_initial_opinion():
    notices = [s for s in NATIONAL.review_steps if s.kind == "notice"]
    assert [(s.name, s.notice_days) for s in notices] == [("township_notice", 7)]
    assert NATIONAL.step_after("township_opinion").kind == "notice"


def test_rule_seed_township_committee_passes_only_unanimously():
    members = [{"opinion": "agree"}, {"opinion": "disagree"}]
    with pytest.raises(ValidationFailed):
        rules.committee_passes_only_unanimously(members, True, JIANGXIA)
    assert rules.committee_passes_only_unanimously(members, False, JIANGXIA) is False


def test_rule_district_joint_review_by_three_distinct_roles():
    assert JIANGXIA.joint_review_roles == ("deputy_director", "centre_director", "investigator")

    class Sig:
        def __init__(self, role, user):
            self.role, self.user = role, user

    with pytest.raises(Conflict):
        rules.nobody_fills_two_roles([Sig("deputy_director", "sun")], "sun", "centre_director")
    with pytest.raises(Conflict):
        rules.nobody_fills_two_roles([Sig("deputy_director", "sun")], "zhou", "deputy_director")


def test_rule_national_county_confirms_within_10_working_days():
    assert NATIONAL.step("joint_review").deadline_workdays == 10
    # opened on Friday 2024-09-27: 10 working days later, across National Day
    assert WorkdayCalendar().add_workdays(date(2024, 9, 27), 10) == date(2024, 10, 16)  # Sun 29 Sep and Sat 12 Oct were make-up days


def test_rule_national_whole_process_30_working_days_45_with_objections():
    assert (NATIONAL.process_workdays, NATIONAL.process_workdays_with_objection) == (30, 45)
    assert JIANGXIA.process_workdays is None


def test_rule_benefit_is_standard_times_size_minus_income_never_negative():
    assert JIANGXIA.benefit(Decimal("820.00"), 3, Decimal("320.50")) == Decimal("2139.50")
    assert JIANGXIA.benefit(Decimal("820.00"), 1, Decimal("900.00")) == Decimal("0.00")


def test_rule_benefit_override_needs_a_written_reason():
    with pytest.raises(ValidationFailed):
        rules.override_has_reason(Decimal("100.00"), "  ")
    rules.override_has_reason(Decimal("100.00"), "医疗支出大，酌情提高")


def test_rule_categories_and_rereview_cadence_per_policy():
    elder = {"birth_date": "1940-01-01", "labour_capacity": "none", "disability": "none"}
    worker = {"birth_date": "1990-01-01", "labour_capacity": "full", "disability": "none"}
    today = date(2026, 11, 28)
    assert [JIANGXIA.categorize(m, today) for m in ([elder], [worker])] == ["long_term", "unstable"]
    assert [JIANGXIA.months_until_rereview(c) for c in ("long_term", "stable", "unstable")] == [12, 6, 3]
    assert [NATIONAL.categorize(m, today) for m in ([elder], [worker])] == ["stable", "able_to_work"]
    assert [NATIONAL.months_until_rereview(c) for c in ("stable", "able_to_work")] == [12, 6]


def test_rule_the_three_sign_one_amount_and_only_registered_people_in_their_roles():
    from shared.errors import Forbidden
    from shared.identity import Actor, Role

    class Sig:
        def __init__(self, role, override, reason):
            self.role, self.benefit_override, self.override_reason = role, override, reason

    signed = [Sig("deputy_director", Decimal("500.00"), "重病")]
    rules.signatures_are_for_the_same_amount(signed, Decimal("500"), " 重病 ")
    with pytest.raises(Conflict) as err:
        rules.signatures_are_for_the_same_amount(signed, None, None)
    assert err.value.details["differs"] == ["benefit_override", "override_reason"]
    with pytest.raises(Conflict) as err:
        rules.signatures_are_for_the_same_amount(signed, Decimal("500.01"), "重病")
    assert err.value.details["differs"] == ["benefit_override"]

    deputy = Actor("sun", "孙局长", "420115", frozenset({Role.DEPUTY_DIRECTOR}))
    assert rules.joint_review_role_of(deputy, [], "deputy_director", registered=True) == "deputy_director"
    for role, registered in (("deputy_director", False), ("centre_director", True), ("investigator", True)):
        with pytest.raises(Forbidden):
            rules.joint_review_role_of(deputy, [{"user": "wang"}], role, registered)
    service = Actor("service:review", "review", "", frozenset({Role.SERVICE}), "service")
    with pytest.raises(Forbidden):
        rules.joint_review_role_of(service, [{"user": "service:review"}], "investigator", registered=True)


def test_rule_verification_report_before_approval_counts_a_passed_deadline_only_where_the_review_goes_on():
    """A complete report: every bureau answered — or, where the policy lets the review go on with
    answers missing, their deadlines passed. A deployment asking no bureau has nothing to wait for."""
    from dataclasses import replace
    from types import SimpleNamespace

    day = date(2027, 3, 10)
    missing = SimpleNamespace(complete=False, bureaus_missing=["bank"], answers_due_by=date(2027, 3, 9))
    national = load_policy("national2021")
    for state in (None, missing):
        with pytest.raises(Conflict) as refused:
            rules.verification_report_is_complete(national, state, day, True)
        assert refused.value.details["rule"] == "verification_report_required"
    rules.verification_report_is_complete(national, replace_state(missing, complete=True), day, True)
    rules.verification_report_is_complete(national, None, day, False)            # no bureau configured
    rules.verification_report_is_complete(load_policy("jiangxia"), None, day, True)
    going_on = replace(national, verification_proceeds_without_answers=True)
    rules.verification_report_is_complete(going_on, missing, day, True)           # the bank's deadline passed
    with pytest.raises(Conflict):
        rules.verification_report_is_complete(going_on, replace_state(missing, answers_due_by=day), day, True)


def replace_state(state, **changes):
    from types import SimpleNamespace

    return SimpleNamespace(**dict(vars(state), **changes))
