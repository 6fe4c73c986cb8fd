"""The statistics are a projection of the recorded events, right for any
past date: the figures match a hand count of this test's own inputs.

The cases of 2025 are published as their producers would (review and
payments events per docs/events.md — the audit service's input contract); one
case of today goes through the real intake → review entry. Every expected
figure below was counted by hand from the table of cases, not computed by
the code under test."""
from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from services.audit.service import AuditService
from services.intake.service import IntakeService
from services.review.service import ReviewService
from shared.identity import Role
from shared.testing import wait_for
from tests.audit_helpers import approved_case, auditor, count, publish
from tests.helpers import COMMUNITY, register_staff

pytestmark = pytest.mark.integration

RURAL = "420115002001"
OFFICER = {"user": "wang.officer", "name": "王专干", "role": "community_officer", "unit": COMMUNITY}

#: name: (area, community, size, benefit, approved_on)
CASES = {
    "A": ("urban", COMMUNITY, 3, "1000.00", "2024-05-01"),
    "B": ("urban", COMMUNITY, 2, "500.00", "2025-02-10"),
    "C": ("urban", COMMUNITY, 4, "800.00", "2025-03-01"),   # cancelled from 2025-05, wrongly included
    "D": ("urban", COMMUNITY, 1, "300.00", "2025-04-01"),   # lowered to 200.00 from 2025-05
    "E": ("urban", COMMUNITY, 5, "900.00", "2025-01-20"),   # raised to 950.00 from 2025-07 (standard change)
    "F": ("rural", RURAL, 2, "400.00", "2025-02-01"),
    "G": ("rural", RURAL, 3, "600.00", "2025-06-20"),       # after 2025-06-15
    "H": ("urban", COMMUNITY, 2, "700.00", "2025-01-05"),   # cancelled from 2025-05, gradual exit to 2025-07
    "I": ("urban", COMMUNITY, 3, "450.00", "2025-03-15"),   # raised to 520.00, 4 persons, from 2025-04
}


def publish_history(config) -> int:
    ids = {name: (str(uuid.uuid4()), str(uuid.uuid4())) for name in CASES}   # case, household
    sent = 0

    def send(source, kind, name, payload, actor=OFFICER):
        nonlocal sent
        case_id, household_id = ids[name]
        publish(config, source, kind, {"household_id": household_id, "case_id": case_id}, payload, actor=actor)
        sent += 1

    def common(name):
        area, community, size, _, _ = CASES[name]
        return {"case_id": ids[name][0], "household_id": ids[name][1], "community_code": community,
                "township_code": community[:9], "area_type": area, "household_size": size}

    for name, (area, community, size, benefit, approved_on) in CASES.items():
        send("review", "case_approved", name, {
            "community_code": community, "township_code": community[:9], "area_type": area,
            "household_size": size, "monthly_benefit": benefit, "category": "stable",
            "start_month": approved_on[:7], "next_rereview_on": "2026-01-01", "approved_on": approved_on,
            "policy": "jiangxia"})
    cancel = {"reason": "清查", "rule": "inspection"}
    send("review", "case_cancelled", "C", {**common("C"), **cancel, "effective_month": "2025-05",
                                           "wrongly_included": True, "gradual_exit_until": None})
    send("review", "case_cancelled", "H", {**common("H"), **cancel, "effective_month": "2025-05",
                                           "wrongly_included": False, "gradual_exit_until": "2025-07"})
    send("review", "case_adjusted", "D", {**common("D"), "old_benefit": "300.00", "new_benefit": "200.00",
                                          "direction": "lowered", "effective_month": "2025-05",
                                          "reason": "收入增加", "rule": "manual", "benefit_gap": "200.00"})
    send("review", "case_adjusted", "I", {**common("I"), "household_size": 4, "old_benefit": "450.00",
                                          "new_benefit": "520.00", "direction": "raised",
                                          "effective_month": "2025-04", "reason": "新生儿", "rule": "manual",
                                          "benefit_gap": "520.00"})
    send("payments", "benefit_changed", "E", {**common("E"), "old_benefit": "900.00", "new_benefit": "950.00",
                                              "direction": "raised", "effective_month": "2025-07",
                                              "change_id": str(uuid.uuid4())})
    for name, amount, period in (("A", "1000.00", "2025-06"), ("B", "500.00", "2025-06"),
                                 ("D", "200.00", "2025-06"), ("F", "1200.00", "2025-Q2")):
        send("payments", "payment_disbursed", name, {**common(name), "run_id": str(uuid.uuid4()),
                                                     "line_id": str(uuid.uuid4()), "period": period,
                                                     "amount": amount, "paid_on": "2025-06-10"})
    # supervision: A's re-review was due 2025-05-01 and never happened; A checked in for 2025-05
    send("review", "review_due", "A", {"case_id": ids["A"][0], "household_id": ids["A"][1],
                                       "community_code": COMMUNITY, "township_code": COMMUNITY[:9],
                                       "category": "stable", "due_on": "2025-05-01"})
    send("intake", "checkin_recorded", "A", {"community_code": COMMUNITY, "month": "2025-05",
                                             "checked_in_on": "2025-05-03"})
    # an application whose evaluation was due 2025-05-10 and has not happened
    app_id, household_id = str(uuid.uuid4()), str(uuid.uuid4())
    publish(config, "intake", "application_submitted", {"household_id": household_id, "application_id": app_id},
            {"community_code": COMMUNITY, "township_code": COMMUNITY[:9], "area_type": "urban",
             "accepted_on": "2025-04-20", "investigation_deadline": None, "policy": "jiangxia", "member_count": 2},
            actor=OFFICER)
    publish(config, "review", "review_step_opened", {"household_id": household_id, "application_id": app_id},
            {"step": "community_evaluation", "kind": "evaluation", "level": "community", "unit_code": COMMUNITY,
             "opened_on": "2025-04-28", "due_on": "2025-05-10"})
    return sent + 2


@pytest.fixture
def audit(container_factory, config):
    config = dict(config, AUDIT_NON_AGRICULTURAL_POPULATION={"420115": 1700})
    container_factory(AuditService, config).start()
    return config


def test_figures_for_past_dates_match_a_hand_count(audit, tmp_path):
    config = audit
    sent = publish_history(config)
    wait_for(lambda: count(config) >= sent, timeout=30, message="the history recorded")
    with auditor(config) as rpc:
        june = rpc.audit.statistics("2025-06-15")
        august = rpc.audit.statistics("2025-08-31")
        board = rpc.audit.scorecard("2025-06-15")
    # 2025-06-15: active urban A B D E H I (C cancelled; H in its gradual exit)
    assert (june["urban_households"], june["urban_persons"]) == (6, 3 + 2 + 1 + 5 + 2 + 4)
    assert june["urban_share_percent"] == "1.00"                          # 17 of 1700
    assert (june["monthly_expenditure"], june["expenditure_source"]) == ("1700.00", "disbursed")
    assert june["average_topup_per_person"] == "100.00"                   # 1700 / 17
    assert june["cancelled"] == {"households": 2, "persons": 4 + 2}       # C, H
    assert june["lowered"] == {"households": 1, "persons": 1}             # D
    assert june["raised"] == {"households": 1, "persons": 4}              # I (E's raise is July's)
    assert june["added"] == {"households": 6, "persons": 2 + 4 + 1 + 5 + 2 + 3}   # B C D E H I
    assert (june["rural_households"], june["rural_persons"]) == (1, 2)    # F (G approved 06-20)
    assert (june["rural_quarter"], june["rural_quarter_payout"], june["rural_payout_source"]) == \
        ("2025-Q2", "1200.00", "disbursed")
    assert june["paragraph"].startswith("截止2025年6月，全区城镇低保对象已达6户17人，占非农业人口的1.00%，"
                                        "月支出保障金1700.00元，月人均补差100.00元，全年共取消低保对象2户6人，"
                                        "降低标准1户1人，新增对象6户17人，提高标准1户4人；")
    # 2025-08-31: H's gradual exit is over, E is raised; no disbursement recorded for August
    assert (august["urban_households"], august["urban_persons"]) == (5, 3 + 2 + 1 + 5 + 4)
    assert (august["monthly_expenditure"], august["expenditure_source"]) == (
        "3170.00", "benefits")                                            # 1000+500+200+950+520
    assert august["average_topup_per_person"] == "211.33"                 # 3170 / 15
    assert august["raised"] == {"households": 2, "persons": 4 + 5}        # I, E
    assert (august["rural_households"], august["rural_persons"]) == (2, 5)
    assert (august["rural_quarter_payout"], august["rural_payout_source"]) == ("3000.00", "benefits")   # 3 × 1000
    rows = {r["community_code"]: r for r in board}
    assert rows[COMMUNITY] == {"township_code": COMMUNITY[:9], "community_code": COMMUNITY, "overdue_steps": 1,
                               "missed_rereviews": 1, "checkin_gaps": 5, "wrongly_included": 1}
    assert rows[RURAL]["checkin_gaps"] == 1

    from typer.testing import CliRunner

    from cli.root import app
    from tests.integration.test_reliability import write_config
    path = write_config(config, tmp_path / "cli.yml")
    out = tmp_path / "stats.xlsx"
    from shared.identity import Role
    from shared.testing import session_env
    as_auditor = session_env(tmp_path, Role.AUDITOR, "420115", "he.auditor", "何审计")   # the logged-in auditor
    result = CliRunner().invoke(app, ["--config", path, "stats", "--date", "2025-06-15", "--xlsx", str(out)],
                                env=as_auditor)
    assert result.exit_code == 0, result.output
    assert "全区城镇低保对象已达6户17人" in result.output
    book = load_workbook(out)
    figures = {row[0].value: row[1].value for row in book["统计"].iter_rows(min_row=2) if row[0].value}
    assert figures["城镇低保户数"] == "6" and figures["月支出保障金(元)"] == "1700.00"
    assert [c.value for c in next(book["考评"].iter_rows(min_row=2))][2:] in ([1, 1, 5, 1], [0, 0, 1, 0])


def test_todays_figures_include_a_case_from_the_real_entry_review(audit, container_factory):
    config = audit
    for cls in (IntakeService, ReviewService):
        container_factory(cls, config).start()
    register_staff(config)
    sent = publish_history(config)
    entry = approved_case(config, seed=61)
    case = entry["case"]
    wait_for(lambda: count(config) >= sent + 10, timeout=30, message="the history recorded")
    with auditor(config) as rpc:
        def approval_counted():
            return rpc.audit.statistics(date.today().isoformat())["added"]["households"] >= 1
        wait_for(approval_counted, timeout=20, message="today's approval in the figures")
        today = rpc.audit.statistics(date.today().isoformat())
    assert case["area_type"] == "urban"
    # still active from 2025: A B D E I (5 households, 15 persons, 3170.00); plus today's case
    assert today["added"] == {"households": 1, "persons": case["household_size"]}
    assert (today["urban_households"], today["urban_persons"]) == (6, 15 + case["household_size"])
    assert Decimal(today["monthly_expenditure"]) == Decimal("3170.00") + Decimal(case["monthly_benefit"])
    assert today["cancelled"] == {"households": 0, "persons": 0}
    with auditor(config, role=Role.PARTNER_BUREAU, user="cz.finance", name="财政局") as rpc:
        assert rpc.audit.statistics(date.today().isoformat())["urban_households"] == 6


def test_a_rural_quarter_paid_month_by_month_is_the_sum_of_its_months(audit):
    """Where the policy pays rural benefits monthly (national 2021), the quarter's payout
    (季发放低保金) is what its months paid, not three months of benefits."""
    config = audit
    case_id, household_id = str(uuid.uuid4()), str(uuid.uuid4())
    facts = {"case_id": case_id, "household_id": household_id, "community_code": RURAL,
             "township_code": RURAL[:9], "area_type": "rural", "household_size": 2}
    subject = {"household_id": household_id, "case_id": case_id}
    publish(config, "review", "case_approved", subject, {
        "community_code": RURAL, "township_code": RURAL[:9], "area_type": "rural", "household_size": 2,
        "monthly_benefit": "400.00", "category": "stable", "start_month": "2025-04",
        "next_rereview_on": "2026-03-01", "approved_on": "2025-03-20", "policy": "national2021"}, actor=OFFICER)
    for period, amount in (("2025-03", "999.00"), ("2025-04", "400.00"), ("2025-05", "380.50")):
        publish(config, "payments", "payment_disbursed", subject, {
            **facts, "run_id": str(uuid.uuid4()), "line_id": str(uuid.uuid4()), "period": period,
            "amount": amount, "paid_on": f"{period}-10"})
    wait_for(lambda: count(config) >= 4, timeout=30, message="the history recorded")
    with auditor(config) as rpc:
        may = rpc.audit.statistics("2025-05-31")
    assert (may["rural_quarter"], may["rural_quarter_payout"], may["rural_payout_source"]) == (
        "2025-Q2", "780.50", "disbursed")                                 # April + May; March is Q1's


def test_verification_per_bureau_is_counted_from_the_recorded_events(audit):
    """核对 per bureau at D (issue 15 item 9): requests sent, reminders, answered (the answer that
    closed a request), overdue (sent, due before D, not answered by D), refused — a hand count."""
    from shared.testing import publish_event

    config = audit
    h, rounds = str(uuid.uuid4()), str(uuid.uuid4())
    requests = {name: str(uuid.uuid4()) for name in ("ps1", "ps2", "bank1")}

    def send(kind, request, occurred, payload):
        publish_event(config, {
            "event_id": str(uuid.uuid4()), "type": kind, "source": "verification", "version": 1,
            "occurred_at": f"{occurred}T09:00:00+00:00", "actor": OFFICER, "correlation_id": "test",
            "subject": {"household_id": h, "round_id": rounds, "request_id": requests.get(request)},
            "payload": payload})

    def sent(request, bureau, on, due, reminder=0):
        send("request_sent", request, on, {"community_code": COMMUNITY, "bureau": bureau, "purpose": "application",
                                           "member_count": 2, "answer_by": due, "reminder": reminder})

    def answered(request, bureau, on, closed):
        send("answer_received", request, on, {"community_code": COMMUNITY, "bureau": bureau, "members_answered": 1,
                                              "found": 0, "no_record": 1, "cannot_answer": 0,
                                              "request_closed": closed})

    sent("ps1", "public_security", "2025-03-03", "2025-03-10")
    sent("ps2", "public_security", "2025-03-05", "2025-03-12")
    sent("bank1", "bank", "2025-03-03", "2025-03-10")
    answered("bank1", "bank", "2025-03-06", False)            # one member of two: still open
    sent("ps1", "public_security", "2025-03-11", "2025-03-10", reminder=1)
    answered("ps1", "public_security", "2025-03-13", True)     # late, after the reminder
    answered("bank1", "bank", "2025-03-20", True)
    send("answer_refused", "bank1", "2025-03-21", {"bureau": "bank", "reason": "request_closed"})
    wait_for(lambda: count(config) >= 8, timeout=30, message="verification's events recorded")

    def board(day):
        with auditor(config) as rpc:
            return {row["bureau"]: row for row in rpc.audit.statistics(day)["verification"]}

    early = board("2025-03-04")
    assert early["public_security"] == {"bureau": "public_security", "requests": 1, "reminders": 0, "answered": 0,
                                        "overdue": 0, "refused": 0}
    mid = board("2025-03-12")
    assert (mid["public_security"]["requests"], mid["public_security"]["reminders"]) == (2, 1)
    assert mid["public_security"]["overdue"] == 1 and mid["bank"]["overdue"] == 1     # ps1 and bank1 past the 10th
    late = board("2025-03-31")
    assert {b: (r["answered"], r["overdue"], r["refused"]) for b, r in late.items()} == {
        "public_security": (1, 1, 0), "bank": (1, 0, 1)}                              # ps2 never answered


def test_a_case_restored_on_appeal_is_active_again_from_the_day_of_restoration(audit, tmp_path):
    """复核 (issue 15 item 8): R and S cancelled from 2025-05 and both appealed; R's appeal upheld
    and the case restored on 2025-05-20, S's dismissed; T's rejection appealed on 2025-06-02 and not
    decided by its due day. A hand count, through the RPC and as `dibao stats` prints it."""
    from typer.testing import CliRunner

    from cli.root import app
    from shared.testing import session_env
    from tests.integration.test_reliability import write_config

    config = audit
    cases = {"R": (3, "600.00", "2025-02-01"), "S": (2, "400.00", "2025-02-01"), "T": (1, "300.00", "2025-03-01")}
    ids = {name: (str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())) for name in cases}  # case, household, app
    sent = 0

    def send(kind, name, payload, **subject):
        nonlocal sent
        case_id, household_id, application_id = ids[name]
        publish(config, "review", kind, {"household_id": household_id, "application_id": application_id,
                                         "case_id": case_id, **subject}, payload, actor=OFFICER)
        sent += 1

    def facts(name):
        return {"case_id": ids[name][0], "household_id": ids[name][1], "community_code": COMMUNITY,
                "township_code": COMMUNITY[:9], "area_type": "urban", "household_size": cases[name][0]}

    def appeal(name, kind, filed_on, due_on, decided=None):
        appeal_id = str(uuid.uuid4())
        common = {"appeal_id": appeal_id, "kind": kind, "community_code": COMMUNITY,
                  "township_code": COMMUNITY[:9], "deciding_unit": COMMUNITY[:6]}
        send("appeal_filed", name, {**common, "filed_on": filed_on, "filed_via": "officer", "due_on": due_on,
                                    "grounds": "家庭仍然困难", "filed_by": "wang.officer", "decision_on": "2025-04-28",
                                    "proposal_id": None}, appeal_id=appeal_id)
        if decided:
            outcome, decided_on = decided
            send("appeal_decided", name, {**common, "outcome": outcome, "decided_on": decided_on, "on_time": True,
                                          "reopened_at": "restored" if outcome == "upheld" else None,
                                          "reason": "核查有误" if outcome == "upheld" else "核查无误",
                                          "decided_by": "wu.deputy"}, appeal_id=appeal_id)
        return appeal_id

    for name, (size, benefit, approved_on) in cases.items():
        send("case_approved", name, {
            "community_code": COMMUNITY, "township_code": COMMUNITY[:9], "area_type": "urban",
            "household_size": size, "monthly_benefit": benefit, "category": "stable",
            "start_month": approved_on[:7], "next_rereview_on": "2026-01-01", "approved_on": approved_on,
            "policy": "jiangxia"})
    for name in ("R", "S"):
        send("case_cancelled", name, {**facts(name), "reason": "收入超标", "rule": "manual",
                                      "effective_month": "2025-05", "wrongly_included": False,
                                      "gradual_exit_until": None})
    upheld = appeal("R", "cancellation", "2025-05-08", "2025-05-29", ("upheld", "2025-05-20"))
    appeal("S", "cancellation", "2025-05-09", "2025-05-30", ("dismissed", "2025-05-22"))
    appeal("T", "rejection", "2025-06-02", "2025-06-20")
    send("case_restored", "R", {**facts("R"), "effective_month": "2025-05", "rule": "appeal_upheld",
                                "appeal_id": upheld, "cancelled_effective_month": "2025-05",
                                "restored_on": "2025-05-20"}, appeal_id=upheld)
    wait_for(lambda: count(config) >= sent, timeout=30, message="the history recorded")

    with auditor(config) as rpc:
        figures = {day: rpc.audit.statistics(day) for day in ("2025-04-30", "2025-05-19", "2025-05-20",
                                                               "2025-06-30")}

    def active(day):
        f = figures[day]
        return f["urban_households"], f["urban_persons"], f["monthly_expenditure"]

    def appeals(day, *keys):
        return tuple(figures[day]["appeals"][k] for k in keys)

    assert active("2025-04-30") == (3, 6, "1300.00")                      # before the cancellations
    assert active("2025-05-19") == (1, 1, "300.00")                       # cancelled from May: T only
    assert active("2025-05-20") == (2, 4, "900.00")                       # R restored that day
    assert active("2025-06-30") == (2, 4, "900.00")                       # S's cancellation stands
    assert appeals("2025-05-19", "filed", "upheld", "dismissed", "overdue") == (2, 0, 0, 0)
    assert appeals("2025-05-20", "filed", "upheld", "dismissed", "overdue") == (2, 1, 0, 0)
    assert appeals("2025-06-30", "filed", "upheld", "dismissed", "overdue", "decided_late") == (3, 1, 1, 1, 0)
    by_kind = {k["kind"]: (k["filed"], k["upheld"], k["dismissed"], k["overdue"])
               for k in figures["2025-06-30"]["appeals"]["by_kind"]}
    assert by_kind == {"cancellation": (2, 1, 1, 0), "rejection": (1, 0, 0, 1)}

    # as `dibao stats` prints them: the paragraph's active count and the appeals' table
    path = write_config(config, tmp_path / "cli.yml")
    as_auditor = session_env(tmp_path, Role.AUDITOR, "420115", "he.auditor", "何审计")
    result = CliRunner().invoke(app, ["--config", path, "stats", "--date", "2025-06-30"], env=as_auditor)
    assert result.exit_code == 0, result.output
    assert "全区城镇低保对象已达2户4人" in result.output

    def row(title):
        [line] = [line for line in result.output.splitlines() if line.strip().startswith(title)]
        return line.split()[1:]
    assert (row("城镇低保户数"), row("城镇低保人数"), row("月支出保障金(元)")) == (["2"], ["4"], ["900.00"])
    assert row("停保") == ["2", "1", "1", "0", "0"]                       # filed, upheld, dismissed, overdue, late
    assert row("不予纳入") == ["1", "0", "0", "1", "0"]
    assert row("合计") == ["3", "1", "1", "1", "0"]
