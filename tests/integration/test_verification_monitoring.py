"""Dynamic monitoring (低收入人口动态监测, issue 15 item 6) and the deadlines (item 4) over real
RabbitMQ with broker users: active cases re-verified on the policy's cadence in set-based batches;
a change a bureau reports on its own becomes exactly one proposal on the case through review's
proposal flow, and one outside the consent's validity is refused back with a typed reason;
overdue requests are reminded once a day; the working-day schedule review loads moves the deadlines."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from kombu import Connection

from services.intake.service import IntakeService
from services.review.service import ReviewService
from services.verification.service import VerificationService
from shared.broker import partner_user, service_config
from shared.clock import FileClock
from shared.policy import load_policy
from shared.testing import publish_event, remove_broker_users, wait_for, with_broker_users
from shared.testing import test_config as deployment_config
from shared.workday_schedule import years_of_payload
from shared.workdays import WorkdayCalendar
from tests.helpers import COMMUNITY
from tests.verification_helpers import (BUREAUS, VEHICLE, add_bureaus, answer, ask, district, officer,
                                        publish_answer, register_staff_as_identity, registered, report,
                                        verification_rows)

pytestmark = pytest.mark.integration
BATCH = 2


@pytest.fixture
def clock(tmp_path):
    c = FileClock(tmp_path / "clock")
    c.set(date.today())
    return c


@pytest.fixture
def deployment(amqp_uri, db_uris, tmp_path, clock):
    config = with_broker_users(deployment_config(amqp_uri, db_uris, tmp_path / "data",
                                                 VERIFICATION_BUREAUS=",".join(BUREAUS), VERIFICATION_BATCH=BATCH,
                                                 CLOCK=f"file:{clock.path}"))
    yield config
    remove_broker_users(config)


def start(container_factory, config, *classes):
    for cls in classes:
        container_factory(cls, service_config(config, cls.name)).start()


def event(source: str, kind: str, subject: dict, payload: dict) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": kind, "source": source, "version": 1,
            "occurred_at": datetime.now(timezone.utc).isoformat(), "actor": None, "subject": subject,
            "correlation_id": "test", "payload": payload}


def case_approved(config, h: dict, approved_on: date) -> str:
    """review.case_approved for the household, as review's broker user publishes it."""
    case_id = str(uuid.uuid4())
    publish_event(config, event("review", "case_approved", {
        "household_id": h["id"], "application_id": str(uuid.uuid4()), "case_id": case_id}, {
        "community_code": COMMUNITY, "township_code": COMMUNITY[:9], "area_type": "urban", "household_size": 2,
        "monthly_benefit": "820.00", "category": "A", "start_month": "2027-01", "policy": "jiangxia",
        "next_rereview_on": (approved_on + timedelta(days=365)).isoformat(), "approved_on": approved_on.isoformat()}))
    return case_id


def case_cancelled(config, h: dict, case_id: str) -> None:
    publish_event(config, event("review", "case_cancelled", {
        "household_id": h["id"], "application_id": str(uuid.uuid4()), "case_id": case_id}, {
        "case_id": case_id, "household_id": h["id"], "community_code": COMMUNITY, "township_code": COMMUNITY[:9],
        "area_type": "urban", "household_size": 2, "effective_month": "2027-02", "reason": "收入超标",
        "rule": "manual", "wrongly_included": False, "gradual_exit_until": None}))


def case_restored(config, h: dict, case_id: str, restored_on: date) -> dict:
    """review.case_restored (an upheld appeal, 复核), as review's broker user publishes it."""
    return publish_event(config, event("review", "case_restored", {
        "household_id": h["id"], "application_id": str(uuid.uuid4()), "case_id": case_id,
        "appeal_id": str(uuid.uuid4())}, {
        "case_id": case_id, "household_id": h["id"], "community_code": COMMUNITY, "township_code": COMMUNITY[:9],
        "area_type": "urban", "household_size": 2, "effective_month": "2027-02", "rule": "appeal_upheld",
        "appeal_id": str(uuid.uuid4()), "cancelled_effective_month": "2027-02",
        "restored_on": restored_on.isoformat()}))


def core_messages(config, queue: str) -> list[dict]:
    """Every message waiting on a core queue (taken off it)."""
    out = []
    with Connection(config["AMQP_URI"]) as conn:
        channel = conn.channel()
        while (msg := channel.basic_get(queue, no_ack=True)) is not None:
            out.append(json.loads(msg.body))
    return out


def bureau_messages(uri: str, kind: str, wanted: int, timeout: float = 30) -> list[dict]:
    """The messages of ``kind`` in a bureau's own verification.requests queue (others dropped)."""
    got = []

    def take():
        with Connection(uri) as conn:
            channel = conn.channel()
            while (msg := channel.basic_get("verification.requests", no_ack=True)) is not None:
                body = json.loads(msg.body)
                if body["type"] == kind:
                    got.append(body)
        return len(got) >= wanted

    wait_for(take, timeout=timeout, message=f"{wanted} {kind} at the bureau")
    return got


class Statements:
    """The SQL statements run in this process that insert into a table (the services run in-process)."""

    def __init__(self, table: str):
        self.prefix, self.count = f"INSERT INTO {table} ", 0

    def __enter__(self):
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", self.seen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(self.prefix.upper()):
            self.count += 1


def test_active_cases_are_re_verified_on_the_cadence_in_set_based_batches(deployment, container_factory, clock):
    config = deployment
    start(container_factory, config, IntakeService, VerificationService)
    today = clock.today()
    households = [registered(config, seed=30 + n) for n in range(5)]
    unsigned = registered(config, seed=40, authorize=False)
    cancelled = registered(config, seed=41)
    cases = {case_approved(config, h, today): h for h in households}
    no_consent_case = case_approved(config, unsigned, today)
    gone = case_approved(config, cancelled, today)
    wait_for(lambda: verification_rows(config, "SELECT count(*) FROM monitored_case")[0][0] == 7, timeout=30,
             message="the approved cases monitored")
    case_cancelled(config, cancelled, gone)
    wait_for(lambda: verification_rows(config, "SELECT status FROM monitored_case WHERE case_id = "
                                               f"'{gone}'")[0][0] == "cancelled", timeout=30, message="cancelled")
    months = load_policy("jiangxia").verification_monitoring_months
    due = date(today.year + (today.month + months - 1) // 12, (today.month + months - 1) % 12 + 1, 1)
    with district(config) as rpc:
        assert rpc.verification.run_monitoring({"as_of": (due - timedelta(days=40)).isoformat()})["rounds"] == 0
        with Statements("bureau_request") as inserts, Statements("request_member") as members:
            done = rpc.verification.run_monitoring({"as_of": (due + timedelta(days=31)).isoformat()})
    assert done == {"rounds": 5, "requests": 5 * len(BUREAUS), "without_consent": 1}
    # set-based: one multi-row INSERT of the requests (and of their members) per batch, not one per request
    batches = -(-6 // BATCH)          # the case without consent is in a batch too (never alone: 3 batches)
    assert (inserts.count, members.count) == (batches, batches)
    # one request per bureau per round, each on that bureau's own channel, once
    for bureau in BUREAUS:
        sent = []
        queue = f"dibao.partner.{bureau}.verification"
        wait_for(lambda: sent.extend(m for m in core_messages(config, queue) if m["type"] == "verification_request")
                 or len(sent) >= 5, timeout=30, message=f"{bureau}'s requests")
        assert len(sent) == 5 and {m["purpose"] for m in sent} == {"monitoring"}
        assert {m["bureau"] for m in sent} == {bureau}
        refs = {m["member_ref"] for msg in sent for m in msg["members"]}
        assert refs == {m["id"] for h in households for m in h["members"]}
    rows = verification_rows(config, "SELECT r.case_id, q.bureau FROM bureau_request q JOIN verification_round r "
                                     "ON r.id = q.round_id WHERE r.purpose = 'monitoring'")
    assert sorted(rows) == sorted((case_id, b) for case_id in cases for b in BUREAUS)
    # the cadence: the verified cases are next due `months` later; the unsigned one stays due
    nexts = dict(verification_rows(config, "SELECT case_id, next_verification_on FROM monitored_case"))
    moved = {str(nexts[c])[:10] for c in cases}
    assert len(moved) == 1 and moved.pop() > (due + timedelta(days=31)).isoformat()
    assert str(nexts[no_consent_case])[:10] <= due.isoformat()
    with district(config) as rpc:
        again = rpc.verification.run_monitoring({"as_of": (due + timedelta(days=31)).isoformat()})
    assert again == {"rounds": 0, "requests": 0, "without_consent": 1}
    # only the district runs it
    with officer(config) as rpc:
        with pytest.raises(Exception) as refused:
            rpc.verification.run_monitoring({})
    assert type(refused.value).__name__ == "Forbidden"


def test_a_case_restored_on_appeal_is_monitored_again_and_the_authorization_still_decides(
        deployment, container_factory, clock):
    """复核 (issue 15 item 8): monitoring stops at the cancellation and resumes at the restoration, on the
    case's cadence; the household without a valid authorization (授权书) is still not asked; a case
    verification never saw (it came later) is taken in, due from the restoration; a redelivery is one."""
    config = deployment
    start(container_factory, config, IntakeService, VerificationService)
    today = clock.today()
    signed, unsigned, unseen = (registered(config, seed=70), registered(config, seed=71, authorize=False),
                                registered(config, seed=72))
    cases = {name: case_approved(config, h, today) for name, h in (("signed", signed), ("unsigned", unsigned))}

    def statuses():
        return dict(verification_rows(config, "SELECT case_id, status FROM monitored_case"))
    wait_for(lambda: len(statuses()) == 2, timeout=30, message="the approved cases monitored")
    for name, h in (("signed", signed), ("unsigned", unsigned)):
        case_cancelled(config, h, cases[name])
    wait_for(lambda: set(statuses().values()) == {"cancelled"}, timeout=30, message="both cancelled")
    months = load_policy("jiangxia").verification_monitoring_months
    due = date(today.year + (today.month + months - 1) // 12, (today.month + months - 1) % 12 + 1, 1)
    late = (due + timedelta(days=31)).isoformat()
    with district(config) as rpc:
        assert rpc.verification.run_monitoring({"as_of": late}) == {"rounds": 0, "requests": 0,
                                                                    "without_consent": 0}
    before = dict(verification_rows(config, "SELECT case_id, next_verification_on FROM monitored_case"))

    restored = case_restored(config, signed, cases["signed"], today)
    publish_event(config, restored)                                    # redelivered
    case_restored(config, unsigned, cases["unsigned"], today)
    unseen_case = str(uuid.uuid4())
    case_restored(config, unseen, unseen_case, today)
    wait_for(lambda: statuses() == {cases["signed"]: "active", cases["unsigned"]: "active", unseen_case: "active"},
             timeout=30, message="monitored again")
    after = dict(verification_rows(config, "SELECT case_id, next_verification_on FROM monitored_case"))
    assert {c: str(after[c])[:10] for c in cases.values()} == {c: str(before[c])[:10] for c in cases.values()}
    assert str(after[unseen_case])[:10] == today.isoformat()
    assert verification_rows(config, "SELECT count(*) FROM inbox WHERE consumer = "
                                     "'verification.on_case_restored'")[0][0] == 3
    with district(config) as rpc:
        # on the cadence, not at once: only the case verification had not seen is due early
        early = rpc.verification.run_monitoring({"as_of": (due - timedelta(days=40)).isoformat()})
        assert early == {"rounds": 1, "requests": len(BUREAUS), "without_consent": 0}
        assert rpc.verification.run_monitoring({"as_of": late}) == {
            "rounds": 1, "requests": len(BUREAUS), "without_consent": 1}        # the unsigned household: not asked
    rows = verification_rows(config, "SELECT case_id FROM verification_round WHERE purpose = 'monitoring'")
    assert sorted(r[0] for r in rows) == sorted([cases["signed"], unseen_case])


def change_report(request_id: str, bureau: str, member_ref: str, findings: list[dict], message_id=None) -> dict:
    return {"type": "change_report", "version": 1, "message_id": message_id or str(uuid.uuid4()),
            "request_id": request_id, "bureau": bureau, "member_ref": member_ref,
            "reported_at": datetime.now(timezone.utc).isoformat(), "findings": findings}


def vehicle(value: str, as_of: str, plate: str = VEHICLE) -> list[dict]:
    return [{"kind": "vehicle", "description": plate, "amount": value, "as_of": as_of}]


def test_a_change_a_bureau_reports_becomes_one_proposal_and_one_after_the_consent_is_refused(
        deployment, container_factory, clock):
    from tests.dynamic_helpers import approved_case, proposals

    config = dict(deployment, POLICY="jiangxia")
    start(container_factory, config, IntakeService, VerificationService, ReviewService)
    register_staff_as_identity(config)
    uris = add_bureaus(config)
    user = partner_user(config, "public_security")
    case = approved_case(config, clock, seed=51)     # jiangxia: the review goes on with answers missing
    h_id = case["household_id"]
    with officer(config) as rpc:     # the authorization (授权书) comes late: the waiting application is asked now
        rpc.intake.register_document({"household_id": h_id, "kind": "authorization", "title": "核对授权书",
                                      "document_date": clock.today().isoformat(), "signed_by": case["member_ids"]})
    # verification asked on the investigation (jiangxia), and monitors the case now
    wait_for(lambda: verification_rows(config, f"SELECT 1 FROM monitored_case WHERE case_id = '{case['id']}' "
                                               "AND status = 'active'"), timeout=30, message="the case monitored")
    asked = wait_for(lambda: verification_rows(config, "SELECT 1 FROM bureau_request"), timeout=30,
                     message="the application's round")
    assert asked
    [request] = [b for b in report(config, h_id)["bureaus"] if b["bureau"] == "public_security"]
    head = case["member_ids"][0]

    def answers_taken(n):
        return wait_for(lambda: verification_rows(config, "SELECT count(*) FROM bureau_message")[0][0] >= n,
                        timeout=30, message=f"{n} bureau messages taken")

    # a new car, reported on its own by public security for a person it was asked about: sent twice
    pushed = change_report(request["request_id"], "public_security", head, vehicle("150000.00", "2027-01-20"))
    publish_answer(uris["public_security"], pushed, user_id=user)
    publish_answer(uris["public_security"], pushed, user_id=user)
    first = wait_for(lambda: proposals(config, case["id"]) or None, timeout=30, message="the proposal")
    answers_taken(1)
    assert len(first) == 1 and first[0]["rule"] == "verification_change" and first[0]["action"] == "rereview"
    assert first[0]["status"] == "pending"        # review's flow: approved by the people the policy names
    # a monitoring round, then a change on its request: still one proposal per change (the report's own
    # discrepancy for the same car is not a second one)
    with district(config) as rpc:
        assert rpc.verification.run_monitoring({"as_of": (clock.today() + timedelta(days=400)).isoformat()}
                                               )["rounds"] == 1
    [(monitoring_request,)] = verification_rows(
        config, "SELECT q.id FROM bureau_request q JOIN verification_round r ON r.id = q.round_id "
                f"WHERE r.case_id = '{case['id']}' AND q.bureau = 'public_security'")
    pension = [{"kind": "pension", "description": "城镇职工养老金", "amount": "2600.00", "as_of": "2027-02-01"}]
    publish_answer(uris["public_security"], change_report(monitoring_request, "public_security", head,
                                                          vehicle("90000.00", "2027-02-01", "丰田卡罗拉 鄂A54321")),
                   user_id=user)
    publish_answer(uris["public_security"], change_report(monitoring_request, "public_security", head, pension),
                   user_id=user)
    answers_taken(3)
    both = wait_for(lambda: (lambda p: p if len(p) >= 3 else None)(proposals(config, case["id"])), timeout=30,
                    message="the monitoring changes' proposals")
    by_action = sorted(p["action"] for p in both)
    assert by_action == ["adjust", "rereview", "rereview"], both
    [adjust] = [p for p in both if p["action"] == "adjust"]
    assert "2600.00" in adjust["reason"]
    # the same change twice is one (the duplicate above); nothing else arrives later
    answers_taken(3)
    assert len(proposals(config, case["id"])) == 3
    # after the household's authorization lapsed: refused back with the typed reason, nothing applied
    [(valid_until,)] = verification_rows(config, "SELECT max(consent_valid_until) FROM verification_round")
    clock.set(date.fromisoformat(str(valid_until)[:10]) + timedelta(days=1))
    findings_before = verification_rows(config, "SELECT count(*) FROM bureau_answer")[0][0]
    late = change_report(monitoring_request, "public_security", head, pension, message_id="ps-late-1")
    publish_answer(uris["public_security"], late, user_id=user)
    [refusal] = bureau_messages(uris["public_security"], "answer_refused", 1)
    assert refusal["reason"] == "consent_expired" and refusal["refused_message_id"] == "ps-late-1"
    assert verification_rows(config, "SELECT count(*) FROM bureau_answer")[0][0] == findings_before
    assert len(proposals(config, case["id"])) == 3


def test_overdue_requests_are_reminded_once_a_day_and_the_loaded_schedule_moves_the_deadlines(
        deployment, container_factory, clock):
    config = deployment
    start(container_factory, config, IntakeService, VerificationService)
    uris = add_bureaus(config)
    h = registered(config, seed=63)
    asked = {b["bureau"]: b for b in ask(config, h)["bureaus"]}
    first, *rest = [m["id"] for m in h["members"]]
    assert rest, "the sample household has more than one member"
    publish_answer(uris["bank"], answer(asked["bank"]["request_id"], "bank", [first]),
                   user_id=partner_user(config, "bank"))
    wait_for(lambda: report(config, h["id"])["findings"], timeout=30, message="the bank's partial answer")
    for bureau in BUREAUS:   # the requests themselves, taken by the bureaus
        bureau_messages(uris[bureau], "verification_request", 1)
    with officer(config) as rpc:
        assert rpc.verification.overdue(COMMUNITY) == []
    clock.set(date.fromisoformat(asked["bank"]["answer_by"]) + timedelta(days=1))
    with officer(config) as rpc:
        late = rpc.verification.overdue(COMMUNITY)
    assert {(r["bureau"], r["members_missing"]) for r in late} == {("bank", len(rest)),
                                                                    ("public_security", len(rest) + 1)}
    with district(config) as rpc:
        assert rpc.verification.send_reminders() == {"reminded": 2}
        assert rpc.verification.send_reminders() == {"reminded": 0}       # once a day
    [bank_reminder] = bureau_messages(uris["bank"], "verification_reminder", 1)
    assert bank_reminder["reminder"] == 1 and bank_reminder["request_id"] == asked["bank"]["request_id"]
    assert {m["member_ref"] for m in bank_reminder["members"]} == set(rest)       # only the unanswered
    [ps_reminder] = bureau_messages(uris["public_security"], "verification_reminder", 1)
    assert len(ps_reminder["members"]) == len(rest) + 1
    clock.set(clock.today() + timedelta(days=1))
    with district(config) as rpc:
        assert rpc.verification.send_reminders() == {"reminded": 2}       # the next day, again
    with officer(config) as rpc:
        stats = {s["bureau"]: s for s in rpc.verification.stats(COMMUNITY)}
    assert stats["bank"]["reminders"] == 2 and stats["bank"]["overdue"] == 1 and stats["bank"]["answers"] == 1
    assert stats["public_security"]["answers"] == 0 and stats["public_security"]["requests"] == 1
    # the bank answers the rest: it is no longer overdue
    publish_answer(uris["bank"], answer(asked["bank"]["request_id"], "bank", rest),
                   user_id=partner_user(config, "bank"))
    with officer(config) as rpc:
        wait_for(lambda: [r["bureau"] for r in rpc.verification.overdue(COMMUNITY)] == ["public_security"],
                 timeout=30, message="the bank's request closed")

    # review loads the official schedule: the next ten days off; verification counts on it at once
    today = clock.today()
    off = [today + timedelta(days=n) for n in range(1, 11)]
    years = sorted({d.year for d in off})
    payload = {"years": years, "days": [{"date": d.isoformat(), "workday": False, "note": "测试放假"} for d in off]}
    publish_event(config, event("review", "calendar_schedule_loaded", {}, payload))
    expected = WorkdayCalendar()
    expected.load_years(years_of_payload(payload))
    want = expected.count(today, 5).day
    assert want > WorkdayCalendar().count(today, 5).day
    other = registered(config, seed=62)

    def deadline():
        rows = verification_rows(config, "SELECT count(*) FROM workday_schedule")
        if not rows[0][0]:
            return None
        return {b["answer_by"] for b in ask(config, other)["bureaus"]}
    assert wait_for(deadline, timeout=30, message="the schedule loaded") == {want.isoformat()}
