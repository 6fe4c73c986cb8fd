"""The policy plugins: loaded from the entry-point group, parameters differ."""
from datetime import date

import pytest

from shared.policy import available, load_policy
from shared.workdays import WorkdayCalendar


def test_both_shipped_policies_are_installed_as_entry_points():
    assert {"jiangxia", "national2021"} <= set(available())


def test_unknown_policy_is_a_clear_error():
    with pytest.raises(LookupError, match="unknown policy 'atlantis'"):
        load_policy("atlantis")


def test_national_rule_investigation_starts_within_3_working_days():
    policy = load_policy("national2021")
    cal = WorkdayCalendar()
    # accepted Friday 2024-09-27: Mon 30 Sep is a workday, then National Day 1-7 Oct;
    # Sun 29 Sep was a make-up working day (调休)
    assert policy.investigation_deadline(date(2024, 9, 27), cal) == date(2024, 10, 8)
    assert policy.family_signature_required is True


def test_seed_practice_has_no_start_deadline_and_no_family_signature():
    policy = load_policy("jiangxia")
    assert policy.investigation_deadline(date(2024, 9, 27), WorkdayCalendar()) is None
    assert policy.family_signature_required is False
    assert policy.min_investigators == 2
