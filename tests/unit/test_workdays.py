"""shared.workdays: the Chinese working-day calendar (工作日)."""

from datetime import date, datetime

import pytest

from shared.workdays import DEFAULT_OVERRIDES_FILE, WorkdayCalendar

cal = WorkdayCalendar()


def test_ordinary_week():
    assert cal.is_workday(date(2024, 9, 6))  # Friday
    assert not cal.is_workday(date(2024, 9, 7))  # Saturday
    assert not cal.is_workday(date(2024, 9, 8))  # Sunday
    assert cal.is_workday(datetime(2024, 9, 9, 15, 30))  # datetime accepted


def test_friday_plus_three_is_wednesday():
    assert cal.add_workdays(date(2024, 9, 6), 3) == date(2024, 9, 11)


def test_zero_returns_start_even_on_a_holiday():
    assert cal.add_workdays(date(2024, 10, 1), 0) == date(2024, 10, 1)


def test_national_day_2024():
    assert not cal.is_workday(date(2024, 10, 1))
    assert not cal.is_workday(date(2024, 10, 7))  # Monday, still 国庆
    assert cal.add_workdays(date(2024, 9, 30), 1) == date(2024, 10, 8)


def test_make_up_workday_is_counted():
    # 2024-10-12 was a Saturday working day (调休).
    assert date(2024, 10, 12).weekday() == 5
    assert cal.is_workday(date(2024, 10, 12))
    assert cal.add_workdays(date(2024, 10, 11), 1) == date(2024, 10, 12)
    assert cal.workdays_between(date(2024, 10, 11), date(2024, 10, 14)) == 2  # Sat 12 + Mon 14


def test_spring_festival_2025():
    # 春节 2025: 28 Jan – 4 Feb off; Sun 26 Jan and Sat 8 Feb worked.
    assert cal.is_workday(date(2025, 1, 26))
    assert not cal.is_workday(date(2025, 2, 3))
    assert cal.add_workdays(date(2025, 1, 27), 1) == date(2025, 2, 5)


def test_workdays_between():
    assert cal.workdays_between(date(2024, 9, 6), date(2024, 9, 11)) == 3
    assert cal.workdays_between(date(2024, 9, 30), date(2024, 10, 8)) == 1
    assert cal.workdays_between(date(2024, 9, 6), date(2024, 9, 6)) == 0
    assert cal.workdays_between(date(2024, 9, 11), date(2024, 9, 6)) == 0


@pytest.mark.parametrize("n", [0, 1, 5, 15, 30])
def test_add_and_between_are_inverse(n):
    start = date(2024, 9, 20)
    assert cal.workdays_between(start, cal.add_workdays(start, n)) == n


def test_negative_n_rejected():
    with pytest.raises(ValueError):
        cal.add_workdays(date(2024, 9, 6), -1)


def test_fallback_for_uncovered_year():
    far = date(2099, 10, 1)  # chinese_calendar does not cover 2099
    assert far.weekday() == 3
    assert not cal.is_workday(far)
    assert not cal.is_workday(date(2099, 1, 1))
    assert not cal.is_workday(date(2099, 5, 1))
    assert cal.is_workday(date(2099, 5, 4))  # Monday after 1-3 May
    assert cal.is_workday(date(2099, 10, 8))
    assert not cal.is_workday(date(2099, 3, 7))  # Saturday
    # 2099-09-30 (Wed) + 1 → skips 1–7 Oct → Thu 8 Oct
    assert cal.add_workdays(date(2099, 9, 30), 1) == date(2099, 10, 8)


def test_overrides_take_precedence():
    spring = date(2099, 1, 28)  # a weekday the fallback treats as working
    makeup = date(2099, 2, 7)  # a Saturday
    overrides = WorkdayCalendar({spring: False, makeup: True, date(2024, 10, 1): True})
    assert cal.is_workday(spring) and not overrides.is_workday(spring)
    assert overrides.is_workday(makeup)
    assert overrides.is_workday(date(2024, 10, 1))  # even beats chinese_calendar


def test_load_csv(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text(
        "date,workday,note\n"
        "2099-01-28,0,春节\n"
        "2099-02-07,true,春节调休\n"
        "\n"
        "2099-02-09,FALSE,\n",
        encoding="utf-8",
    )
    loaded = WorkdayCalendar.load(str(path))
    assert loaded.overrides == {
        date(2099, 1, 28): False,
        date(2099, 2, 7): True,
        date(2099, 2, 9): False,
    }
    assert not loaded.is_workday(date(2099, 1, 28))


def test_load_missing_gives_no_overrides(tmp_path):
    assert WorkdayCalendar.load(None).overrides == {}
    assert WorkdayCalendar.load("").overrides == {}
    assert WorkdayCalendar.load(str(tmp_path / "nope.csv")).overrides == {}


def test_shipped_file_is_header_only():
    assert DEFAULT_OVERRIDES_FILE.read_text(encoding="utf-8").strip() == "date,workday,note"
    assert WorkdayCalendar.load(str(DEFAULT_OVERRIDES_FILE)).overrides == {}
    # the config default is relative to the project root
    assert WorkdayCalendar.load("shared/data/workday_overrides.csv").overrides == {}


@pytest.mark.parametrize(
    "body",
    [
        "date,workday,note\n2099-13-01,1,\n",
        "date,workday,note\n2099-01-02,maybe,\n",
        "date,workday,note\n2099-01-02,1,\n2099-01-02,0,\n",
        "day,workday\n2099-01-02,1\n",
    ],
)
def test_load_rejects_bad_rows(tmp_path, body):
    path = tmp_path / "bad.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ValueError):
        WorkdayCalendar.load(path)
