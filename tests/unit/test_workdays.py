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


def test_year_past_the_library_takes_statutory_holidays_from_the_holidays_package():
    # chinesecalendar 1.11 ends with 2026; 2027's Spring Festival (除夕 Fri 5 Feb – 初三 Mon 8 Feb, and the
    # two days moved off the weekend, 9–10 Feb) comes from the `holidays` package: not working days
    for off in (date(2027, 2, 5), date(2027, 2, 8), date(2027, 2, 9), date(2027, 2, 10), date(2027, 10, 1),
                date(2027, 1, 1), date(2027, 4, 5), date(2027, 6, 9), date(2027, 9, 15)):
        assert not cal.is_workday(off), off
        assert cal.is_provisional(off)
    assert cal.is_workday(date(2027, 2, 11)) and not cal.is_workday(date(2027, 2, 13))  # Thu; Sat
    assert cal.day(date(2027, 2, 8)) == (False, "holidays", "春节")


def test_a_count_across_a_provisional_year_says_so():
    counted = cal.count(date(2027, 2, 4), 3)
    assert counted.day == date(2027, 2, 15) and counted.provisional
    assert cal.add_workdays(date(2027, 2, 4), 3) == date(2027, 2, 15)
    # within 2026 (chinesecalendar's) it is not; across New Year into 2027 it is
    assert cal.count(date(2026, 12, 1), 5).provisional is False
    assert cal.count(date(2026, 12, 29), 3).provisional is True
    assert cal.crosses_provisional(date(2026, 12, 29), date(2027, 1, 4))
    assert not cal.crosses_provisional(date(2026, 12, 1), date(2026, 12, 31))
    assert not cal.crosses_provisional(None, date(2027, 1, 4))
    assert cal.count(date(2027, 2, 4), 0) == cal.count(date(2027, 2, 4), 0).__class__(date(2027, 2, 4), False)


def test_the_official_schedule_replaces_the_guess_and_is_not_provisional():
    loaded = WorkdayCalendar()
    loaded.load_years({2027: {date(2027, 2, d): (False, "春节") for d in range(5, 11)}
                             | {date(2027, 2, 13): (True, "春节调休上班")}})
    counted = loaded.count(date(2027, 2, 4), 3)
    assert counted.day == date(2027, 2, 13) and not counted.provisional
    assert loaded.day(date(2027, 2, 13)) == (True, "bureau", "春节调休上班")
    assert loaded.is_workday(date(2027, 10, 1))   # not listed in this (partial) schedule: a Friday
    assert loaded.year_status(2027) == "confirmed" and cal.year_status(2027) == "provisional"
    assert loaded.year_status(2026) == "library"
    assert cal.count(date(2027, 2, 4), 3).day == date(2027, 2, 15)   # another calendar is unchanged


def test_the_first_use_of_a_provisional_year_is_logged_once(caplog):
    from shared import workdays
    workdays._warned_years.discard(2031)
    with caplog.at_level("WARNING", logger="shared.workdays"):
        cal.is_workday(date(2031, 3, 3))
        cal.add_workdays(date(2031, 3, 3), 20)
        WorkdayCalendar().is_workday(date(2031, 5, 1))
    lines = [r.getMessage() for r in caplog.records if "2031" in r.getMessage()]
    assert len(lines) == 1 and "provisional" in lines[0] and "dibao calendar import" in lines[0]


def test_2026_vectors_from_the_library():
    # National Day 2026: 1–7 Oct off, Saturday 10 Oct a make-up working day (调休)
    assert not cal.is_workday(date(2026, 10, 1)) and not cal.is_workday(date(2026, 10, 7))
    assert date(2026, 10, 10).weekday() == 5 and cal.is_workday(date(2026, 10, 10))
    assert cal.add_workdays(date(2026, 9, 30), 1) == date(2026, 10, 8)
    assert cal.add_workdays(date(2026, 10, 9), 1) == date(2026, 10, 10)
    # Spring Festival 2026: 15–23 Feb off; Saturdays 14 Feb and 28 Feb worked
    assert not cal.is_workday(date(2026, 2, 16)) and not cal.is_workday(date(2026, 2, 23))
    assert cal.is_workday(date(2026, 2, 14)) and cal.is_workday(date(2026, 2, 28))
    assert cal.add_workdays(date(2026, 2, 13), 2) == date(2026, 2, 24)
    assert not cal.count(date(2026, 2, 13), 2).provisional
    view = cal.year_view(2026)
    assert view["status"] == "confirmed" and view["source"] == "library"
    assert {"date": "2026-10-10", "workday": True, "source": "library", "note": "National Day",
            "kind": "make-up working day"} in view["days"]


def test_year_view_of_a_provisional_year():
    view = cal.year_view(2027)
    assert view["status"] == "provisional" and view["source"] == "holidays"
    assert {"date": "2027-02-08", "workday": False, "source": "holidays", "note": "春节",
            "kind": "day off"} in view["days"]
    with pytest.raises(ValueError):
        cal.year_view(2101)


def test_overrides_take_precedence():
    spring = date(2099, 1, 28)  # a weekday that is no statutory holiday
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
