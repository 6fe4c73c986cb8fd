"""Notify over real RabbitMQ, driven by review events published by hand (as
the review service would publish them), with a real intake service.

Covers: the board page and the printable PDF (masked ID numbers only), the
posting period's clock (once, also concurrently, also across a restart),
objections, redelivery, messages through the file and SMTP channels, and
bad input.
"""
from __future__ import annotations

import email
import email.policy
import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import eventlet
import pytest
import sqlalchemy as sa
from nameko.events import event_handler
from pypdf import PdfReader

import contracts.review  # noqa: F401 - registers the review events published here
from services.intake.service import IntakeService
from services.notify.service import NotifyService
from shared.db import make_engine
from shared.deadletter import list_parked
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed
from shared.events import Event, envelope
from shared.identity import Role
from shared.masking import mask_resident_id
from shared.testing import publish_event, rpc_as, wait_for
from tests.helpers import COMMUNITY, DISTRICT, OTHER_COMMUNITY, TOWNSHIP, household, officer, register_staff

pytestmark = pytest.mark.integration

TODAY = date.today()
REVIEW = {"user": "service:review", "name": "review service", "role": "service", "unit": ""}
heard: list = []


class NoticeWatcher:
    """A partner's plain nameko service listening to notify's events."""

    name = "notice_watcher"

    @event_handler("notify", "notice_posted")
    def posted(self, event):
        heard.append(event)

    @event_handler("notify", "notice_closed")
    def closed(self, event):
        heard.append(event)

    @event_handler("notify", "objection_filed")
    def objection(self, event):
        heard.append(event)


def of_type(kind: str) -> list[dict]:
    return [e for e in heard if e["type"] == kind]


def review_event(event_type: str, household_id: str, payload: dict, **subject) -> dict:
    subject = {"household_id": household_id, "application_id": subject.pop("application_id", "app-1"), **subject}
    return envelope(Event("review", event_type, subject, payload), REVIEW, "test-correlation")


def publish(config: dict, env: dict) -> dict:
    """As review's outbox relay publishes: JSON text to review.events."""
    assert env["source"] == "review"
    return publish_event(config, env)


def notice_request(household_id: str, stage="community_notice", unit=COMMUNITY, days=7, size=2, benefit=None,
                   **subject) -> dict:
    return review_event("notice_requested", household_id, {
        "stage": stage, "unit_code": unit, "days": days, "household_size": size, "monthly_benefit": benefit,
        "blocking": stage != "result"}, **subject)


def rows(config: dict, sql: str) -> list:
    engine = make_engine(config["DB_URIS"]["notify"])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def outbox(config: dict) -> list[str]:
    return [r[0] for r in rows(config, "SELECT routing_key FROM outbox WHERE routing_key != 'command_recorded' ORDER BY id")]


def sysadmin(config):
    """The system administrator: may close notices as of a later day (no case data)."""
    return rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin", name="系统管理员")


def district(config):
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


@pytest.fixture
def cluster(container_factory):
    """Start intake, a watcher and notify (in that order: notify's queues must
    exist before review events are published) and register a household."""

    def start(config: dict, seed: int = 1) -> dict:
        heard.clear()
        intake = container_factory(IntakeService, config)
        intake.start()
        container_factory(NoticeWatcher, config).start()
        notify = container_factory(NotifyService, config)
        notify.start()
        register_staff(config)
        data = household(seed=seed)
        with officer(config) as rpc:
            created = rpc.intake.register_household(data)
        return {"household_id": created["household_id"], "data": data, "notify": notify, "intake": intake}

    return start


def post(config: dict, env: dict) -> dict:
    publish(config, env)
    wait_for(lambda: [e for e in of_type("notice_posted") if e["subject"]["household_id"] ==
                      env["subject"]["household_id"] and e["payload"]["stage"] == env["payload"]["stage"]],
             timeout=20, message="notice_posted")
    with district(config) as rpc:
        [notice] = [n for n in rpc.notify.list_notices(DISTRICT, active_only=False)
                    if n["household_id"] == env["subject"]["household_id"]
                    and n["stage"] == env["payload"]["stage"]]
    return notice


# --- notices and the board ---------------------------------------------------------

def test_notice_is_posted_once_and_the_board_shows_only_masked_ids(cluster, config):
    c = cluster(config, seed=21)
    hid, members = c["household_id"], c["data"]["members"]
    head = members[0]
    env = notice_request(hid, size=len(members))
    publish(config, env)
    publish(config, env)                                   # a duplicate delivery, at once
    notice = post(config, env)
    assert notice["head_name"] == head["name"] and notice["household_size"] == len(members)
    assert notice["masked_resident_id"] == mask_resident_id(head["resident_id"])
    assert notice["posted_on"] == TODAY.isoformat()
    assert notice["closes_on"] == (TODAY + timedelta(days=6)).isoformat()   # 7 calendar days, today included
    [posted] = of_type("notice_posted")
    assert posted["subject"] == {"notice_id": notice["id"], "household_id": hid, "application_id": "app-1"}
    assert posted["payload"] == {"stage": "community_notice", "unit_code": COMMUNITY,
                                 "posted_on": notice["posted_on"], "closes_on": notice["closes_on"]}

    result = post(config, notice_request(hid, stage="result", days=5, size=len(members),
                                         benefit=Decimal("812.50"), case_id="case-1"))
    assert result["monthly_benefit"] == "812.50" and result["case_id"] == "case-1"

    boards = Path(config["DATA_DIR"]) / "notices"
    wait_for(lambda: "812.50" in (boards / f"{COMMUNITY}.html").read_text("utf-8")
             if (boards / f"{COMMUNITY}.html").exists() else False, message="the board re-rendered")
    with officer(config) as rpc:
        paths = rpc.notify.render_board(COMMUNITY)
    assert paths == {"unit_code": COMMUNITY, "html": str(boards / f"{COMMUNITY}.html"),
                     "pdf": str(boards / f"{COMMUNITY}.pdf"), "notices": 2, "problems": []}
    page = Path(paths["html"]).read_text("utf-8")
    pdf = "".join(p.extract_text() for p in PdfReader(paths["pdf"]).pages)
    for text in (page, pdf):
        assert head["name"] in text and notice["masked_resident_id"] in text
        assert "812.50" in text and "最低生活保障公示" in text and "异议" in text
        for member in members:
            assert member["resident_id"] not in text
    assert "低保审批结果公布" in pdf and "东城社区" in pdf

    eventlet.sleep(0.5)                                    # a straggling duplicate would show now
    assert len(rows(config, "SELECT id FROM notice")) == 2
    assert outbox(config) == ["notice_posted", "notice_posted"]
    dump = repr(rows(config, "SELECT * FROM notice")) + repr(rows(config, "SELECT * FROM outbox"))
    for member in members:
        assert member["resident_id"] not in dump            # stored masked only


def test_a_notice_posted_writes_its_own_sheet_and_the_index_not_the_whole_board(cluster, config, monkeypatch):
    """Per notice plus an index: posting renders one PDF (the notice's own
    sheet) and the index page; the whole-board sheet is made on demand and
    removed when the index changes; a closed notice's sheet is withdrawn."""
    from services.notify import rendering

    sheets = []
    original = rendering.render_pdf

    def counted(unit_name, notices, today, font_path, target):
        sheets.append(len(notices))
        return original(unit_name, notices, today, font_path, target)

    monkeypatch.setattr(rendering, "render_pdf", counted)
    c = cluster(config, seed=23)
    hid, members = c["household_id"], c["data"]["members"]
    boards = Path(config["DATA_DIR"]) / "notices"
    index, whole = boards / f"{COMMUNITY}.html", boards / f"{COMMUNITY}.pdf"
    first = post(config, notice_request(hid, size=len(members)))
    first_sheet = boards / COMMUNITY / f"{first['id']}.pdf"
    wait_for(lambda: first_sheet.exists() and index.exists(), message="the notice's sheet and the index")
    assert sheets == [1] and not whole.exists()
    assert f'href="{COMMUNITY}/{first["id"]}.pdf"' in index.read_text("utf-8")
    with officer(config) as rpc:
        assert rpc.notify.render_board(COMMUNITY)["pdf"] == str(whole)     # the whole board, on demand
    assert sheets == [1, 1] and whole.exists()
    written = first_sheet.read_bytes()

    second = post(config, notice_request(hid, stage="result", days=5, size=len(members),
                                         benefit=Decimal("700.00"), case_id="case-2"))
    second_sheet = boards / COMMUNITY / f"{second['id']}.pdf"
    wait_for(lambda: second_sheet.exists() and "700.00" in index.read_text("utf-8"), message="the second notice")
    assert sheets == [1, 1, 1]                     # one notice's sheet: the first one is not rendered again
    assert not whole.exists()                      # outdated by the index: removed, made again when asked
    assert first_sheet.read_bytes() == written
    text = "".join(p.extract_text() for p in PdfReader(second_sheet).pages)
    assert "低保审批结果公布" in text and mask_resident_id(members[0]["resident_id"]) in text
    assert "低保社区公示" not in text              # its own sheet shows itself only

    with sysadmin(config) as rpc:                  # the result notice (5 days) closes, the other (7) stays
        closed = rpc.notify.close_due_notices((TODAY + timedelta(days=5)).isoformat())
    assert [c["notice_id"] for c in closed] == [second["id"]]
    page = index.read_text("utf-8")
    assert not second_sheet.exists() and first_sheet.exists()
    assert "700.00" not in page and "低保社区公示" in page and sheets == [1, 1, 1]


def test_close_due_notices_closes_each_once_even_concurrently(cluster, config):
    c = cluster(config, seed=22)
    notice = post(config, notice_request(c["household_id"]))
    closes_on = date.fromisoformat(notice["closes_on"])
    with sysadmin(config) as rpc:
        assert rpc.notify.close_due_notices(closes_on.isoformat()) == []    # its last day: still up

    day_after = (closes_on + timedelta(days=1)).isoformat()

    def close():
        with sysadmin(config) as rpc:
            return rpc.notify.close_due_notices(day_after)

    results = [t.wait() for t in [eventlet.spawn(close) for _ in range(3)]]
    assert sorted(len(r) for r in results) == [0, 0, 1]
    assert [r for r in results if r][0] == [{"notice_id": notice["id"], "unit_code": COMMUNITY, "objections": 0}]
    with sysadmin(config) as rpc:
        assert rpc.notify.close_due_notices(day_after) == []
    with district(config) as rpc:
        assert rpc.notify.get_notice(notice["id"])["status"] == "closed"
        assert rpc.notify.list_notices(COMMUNITY) == []
    wait_for(lambda: of_type("notice_closed"), message="notice_closed")
    eventlet.sleep(0.3)
    [closed] = of_type("notice_closed")
    assert closed["payload"] == {"stage": "community_notice", "unit_code": COMMUNITY, "closed_on": day_after,
                                 "objections": 0}
    assert outbox(config) == ["notice_posted", "notice_closed"]

    with officer(config) as rpc:
        with pytest.raises(Conflict):
            rpc.notify.file_objection({"notice_id": notice["id"], "text": "迟到的异议", "anonymous": True})
    with rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT) as rpc:          # may close, but not look ahead
        with pytest.raises(Forbidden):
            rpc.notify.close_due_notices((TODAY + timedelta(days=30)).isoformat())
    with officer(config) as rpc:                                         # a community officer may not close
        with pytest.raises(Forbidden):
            rpc.notify.close_due_notices()
    assert outbox(config) == ["notice_posted", "notice_closed"]


def test_objection_is_recorded_without_contact_details_in_the_event(cluster, config):
    c = cluster(config, seed=23)
    notice = post(config, notice_request(c["household_id"], stage="township_notice", unit=TOWNSHIP))
    objection = {"notice_id": notice["id"], "text": "该户有家庭成员在外务工，收入未申报",
                 "contact_name": "周大妈", "contact_phone": "13912345678", "anonymous": False}
    with officer(config) as rpc:             # the household's community officer, for a township notice
        filed = rpc.notify.file_objection(objection)
        anonymous = rpc.notify.file_objection({"notice_id": notice["id"], "text": "收入不实", "anonymous": True})
    assert filed["contact_phone"] == "13912345678" and anonymous["contact_name"] is None
    wait_for(lambda: len(of_type("objection_filed")) == 2, message="objection_filed twice")
    event = [e for e in of_type("objection_filed") if e["subject"]["objection_id"] == filed["id"]][0]
    assert event["subject"] == {"notice_id": notice["id"], "objection_id": filed["id"],
                                "household_id": c["household_id"], "application_id": "app-1"}
    assert event["payload"] == {"stage": "township_notice", "unit_code": TOWNSHIP,
                                "filed_on": TODAY.isoformat(), "anonymous": False}
    assert event["actor"]["user"] == "wang.officer"
    text = repr(of_type("objection_filed"))
    assert "周大妈" not in text and "13912345678" not in text and "务工" not in text
    stored = repr(rows(config, "SELECT * FROM objection"))
    assert "周大妈" not in stored and "13912345678" not in stored       # encrypted at rest
    with rpc_as(config, Role.TOWNSHIP_OFFICER, TOWNSHIP, user="li.township") as rpc:
        listed = rpc.notify.list_objections(notice["id"])
    assert [o["contact_name"] for o in listed] == ["周大妈", None]

    bad = [({"text": "x", "anonymous": True}, "notice_id"),
           (dict(objection, text=""), "text"),
           (dict(objection, text="   "), "text"),
           ({"notice_id": notice["id"], "text": "x"}, "anonymous"),
           (dict(objection, anonymous=True), "contact_name"),
           (dict(objection, contact_name=None), "contact_name"),
           (dict(objection, contact_phone="call me"), "contact_phone")]
    with officer(config) as rpc:
        for data, field in bad:
            with pytest.raises(ValidationFailed) as err:
                rpc.notify.file_objection(data)
            assert field in err.value.fields, (data, err.value.fields)
        with pytest.raises(NotFound):
            rpc.notify.file_objection(dict(objection, notice_id="no-such-notice"))
    with officer(config, unit=OTHER_COMMUNITY, user="qian.other") as rpc:   # outside: as if it did not exist
        for call in (lambda: rpc.notify.file_objection(objection), lambda: rpc.notify.list_objections(notice["id"]),
                     lambda: rpc.notify.get_notice(notice["id"])):
            with pytest.raises(NotFound) as err:
                call()
            assert (err.value.message, err.value.details) == (f"no notice {notice['id']}", {"notice_id": notice["id"]})
    with rpc_as(config, Role.COMMUNITY_PANEL, COMMUNITY) as rpc:     # reads notices, not objectors' contacts
        assert rpc.notify.get_notice(notice["id"])["id"] == notice["id"]
        with pytest.raises(Forbidden):
            rpc.notify.list_objections(notice["id"])
    assert len(rows(config, "SELECT id FROM objection")) == 2

    with sysadmin(config) as rpc:
        closes_on = date.fromisoformat(notice["closes_on"])
        [closed] = rpc.notify.close_due_notices((closes_on + timedelta(days=1)).isoformat())
    assert closed["objections"] == 2
    wait_for(lambda: of_type("notice_closed"), message="notice_closed")
    assert of_type("notice_closed")[0]["payload"]["objections"] == 2
    assert outbox(config) == ["notice_posted", "objection_filed", "objection_filed", "notice_closed"]


def test_a_notice_whose_period_ended_while_notify_was_down_closes_when_it_returns(cluster, container_factory,
                                                                                    sqlite_config):
    config = dict(sqlite_config, NOTICE_CHECK_SECONDS=0.3)
    c = cluster(config, seed=24)
    notice = post(config, notice_request(c["household_id"]))
    c["notify"].stop()
    engine = make_engine(config["DB_URIS"]["notify"])     # ten days pass while notify is down
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE notice SET posted_on = :p, closes_on = :c"),
                     {"p": TODAY - timedelta(days=10), "c": TODAY - timedelta(days=4)})
    engine.dispose()
    assert not of_type("notice_closed")
    container_factory(NotifyService, config).start()          # notify is back
    wait_for(lambda: of_type("notice_closed"), timeout=15, message="closed on return")
    eventlet.sleep(1.0)                                       # more ticks: nothing more
    [closed] = of_type("notice_closed")
    assert closed["subject"]["notice_id"] == notice["id"] and closed["actor"] is None
    assert closed["payload"]["closed_on"] == TODAY.isoformat()
    assert outbox(config) == ["notice_posted", "notice_closed"]


def test_a_notice_asked_for_while_intake_is_away_is_retried_parked_and_replayed(cluster, container_factory,
                                                                                 sqlite_config):
    sqlite_config = dict(sqlite_config, RPC_TIMEOUT=1)
    c = cluster(sqlite_config, seed=27)
    c["intake"].stop()                                        # notify's calls to intake time out
    env = publish(sqlite_config, notice_request(c["household_id"]))
    [parked] = wait_for(lambda: list_parked(sqlite_config["AMQP_URI"]), timeout=20, message="parked")
    assert parked.attempts == 3 and parked.handler == "notify.on_notice_requested"
    assert rows(sqlite_config, "SELECT id FROM notice") == []
    container_factory(IntakeService, sqlite_config).start()   # intake is back; the administrator replays
    with sysadmin(sqlite_config) as rpc:
        assert rpc.notify.replay_dead_letters() == {"replayed": 1}
    notice = post(sqlite_config, env)
    assert notice["household_id"] == c["household_id"] and len(of_type("notice_posted")) == 1


# --- messages to households -----------------------------------------------------------

class FakeSmtp:
    """Just enough of an SMTP server on 127.0.0.1 to receive mail; ``refuse``
    answers that many MAIL commands with a temporary failure."""

    def __init__(self):
        self.server = eventlet.listen(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.mails: list = []
        self.refuse = 0
        self.thread = eventlet.spawn(self._serve)

    def _serve(self):
        while True:
            conn, _ = self.server.accept()
            eventlet.spawn(self._session, conn)

    def _session(self, conn):
        f = conn.makefile("rwb")

        def reply(line):
            f.write(line.encode() + b"\r\n")
            f.flush()

        reply("220 fake ESMTP")
        to = []
        for raw in f:
            verb = raw[:4].decode().upper()
            if verb == "MAIL" and self.refuse:
                self.refuse -= 1
                reply("451 try again later")
            elif verb == "RCPT":
                to.append(raw.decode().split(":", 1)[1].strip(" <>\r\n"))
                reply("250 ok")
            elif verb == "DATA":
                reply("354 go on")
                data = b"".join(iter(lambda: f.readline(), b".\r\n"))
                self.mails.append((to, email.message_from_bytes(data, policy=email.policy.default)))
                reply("250 queued")
            elif verb == "QUIT":
                reply("221 bye")
                break
            else:
                reply("250 ok")
        conn.close()

    def close(self):
        self.thread.kill()
        self.server.close()


def outbox_lines(config: dict) -> list[dict]:
    path = Path(config["DATA_DIR"]) / "messages" / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()] if path.exists() else []


def test_a_decision_reaches_the_household_once_by_file_and_by_smtp(cluster, sqlite_config):
    smtp = FakeSmtp()
    config = dict(sqlite_config, NOTIFY_CHANNELS="file,smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port,
                  SMTP_TO_DOMAIN="sms.example.test")
    try:
        c = cluster(config, seed=25)
        hid, phone, name = c["household_id"], c["data"]["phone"], c["data"]["members"][0]["name"]
        approved = review_event("case_approved", hid, {
            "community_code": COMMUNITY, "township_code": TOWNSHIP, "area_type": "urban", "household_size": 2,
            "monthly_benefit": Decimal("812.50"), "category": "stable", "start_month": "2027-01",
            "next_rereview_on": date(2027, 6, 30), "approved_on": date(2026, 12, 15), "policy": "jiangxia"},
            case_id="case-9")
        publish(config, approved)
        wait_for(lambda: len(rows(config, "SELECT id FROM message")) == 2, timeout=20, message="file and mail")
        publish(config, approved)                                        # redelivered
        eventlet.sleep(0.5)
        [line] = outbox_lines(config)
        assert line["household_id"] == hid and line["phone"] == phone and line["kind"] == "case_approved"
        assert line["text"] == (f"{name}：您家的最低生活保障申请已于2026年12月15日批准，保障人口2人，"
                                f"月保障金812.50元，自2027年1月起发放。")
        [(to, mail)] = smtp.mails
        assert to == [f"{phone}@sms.example.test"]
        assert mail["Subject"] == "低保审批结果" and mail.get_content().strip() == line["text"]

        # SMTP refuses twice: the file line is not repeated, the mail goes on the third attempt
        smtp.refuse = 2
        rejected = review_event("application_rejected", hid, {
            "community_code": COMMUNITY, "step": "township_review", "reason": "家庭收入高于当地低保标准",
            "rejected_on": date(2026, 12, 1)}, application_id="app-2")
        publish(config, rejected)
        wait_for(lambda: len(smtp.mails) == 2, timeout=20, message="mail after two refusals")
        eventlet.sleep(0.3)
        assert len(outbox_lines(config)) == 2 and smtp.refuse == 0
        assert "乡镇（街道）评审" in outbox_lines(config)[1]["text"]
        assert "家庭收入高于当地低保标准" in smtp.mails[1][1].get_content()
        sent = rows(config, "SELECT kind, channel, status FROM message ORDER BY id")
        assert sorted(sent) == sorted([("case_approved", "file", "sent"), ("case_approved", "smtp", "sent"),
                                       ("application_rejected", "file", "sent"),
                                       ("application_rejected", "smtp", "sent")])
        assert list_parked(config["AMQP_URI"]) == []
    finally:
        smtp.close()


def test_a_message_file_that_cannot_be_written_is_a_visible_problem_until_it_is(cluster, sqlite_config):
    """The file channel's outbox cannot be written (here: a folder where the
    file should be): notify's health lists the problem, the event is retried
    then parked, and once the path is writable a replay writes the message
    and clears the problem."""
    c = cluster(sqlite_config, seed=28)
    blocked = Path(sqlite_config["DATA_DIR"]) / "messages" / "outbox.jsonl"
    blocked.mkdir(parents=True)
    publish(sqlite_config, review_event("case_approved", c["household_id"], {
        "community_code": COMMUNITY, "township_code": TOWNSHIP, "area_type": "urban", "household_size": 2,
        "monthly_benefit": Decimal("812.50"), "category": "stable", "start_month": "2027-01",
        "next_rereview_on": date(2027, 6, 30), "approved_on": date(2026, 12, 15), "policy": "jiangxia"},
        case_id="case-3"))
    wait_for(lambda: list_parked(sqlite_config["AMQP_URI"]), timeout=20, message="parked after its retries")
    with sysadmin(sqlite_config) as rpc:
        [problem] = rpc.notify.ping()["problems"]
    assert (problem["kind"], problem["target"], problem["code"]) == ("message", "file", "io_error")
    assert str(blocked) in problem["detail"] and problem["attempts"] >= 1

    blocked.rmdir()
    with sysadmin(sqlite_config) as rpc:
        assert rpc.notify.replay_dead_letters() == {"replayed": 1}
    wait_for(lambda: outbox_lines(sqlite_config), timeout=20, message="the message written")
    with sysadmin(sqlite_config) as rpc:
        assert rpc.notify.ping()["problems"] == []


def appeal_decided(household_id: str, outcome: str, kind: str, reason: str, reopened_at=None) -> dict:
    appeal_id = f"appeal-{outcome}-{kind}"
    return review_event("appeal_decided", household_id, {
        "appeal_id": appeal_id, "kind": kind, "community_code": COMMUNITY, "township_code": TOWNSHIP,
        "deciding_unit": DISTRICT, "outcome": outcome, "decided_on": date(2027, 2, 3), "on_time": True,
        "reopened_at": reopened_at, "reason": reason, "decided_by": "wu.deputy"},
        appeal_id=appeal_id, case_id="case-7")


def test_an_appeal_decided_and_a_case_restored_reach_the_household_without_id_numbers_or_incomes(
        cluster, sqlite_config, caplog):
    """复核 (issue 15 item 8): upheld and dismissed, each with the reason as the household may see
    it (a resident ID number a decider typed into it masked), and the restored case — once each,
    also when redelivered; neither the message nor the logs carry an ID number or an income."""
    caplog.set_level("INFO")
    config = sqlite_config
    c = cluster(config, seed=27)
    hid, name, members = c["household_id"], c["data"]["members"][0]["name"], c["data"]["members"]
    head_id = members[0]["resident_id"]
    upheld = appeal_decided(hid, "upheld", "cancellation", f"停保依据的核查有误（核查对象{head_id}）",
                            reopened_at="restored")
    restored = review_event("case_restored", hid, {
        "case_id": "case-7", "household_id": hid, "community_code": COMMUNITY, "township_code": TOWNSHIP,
        "area_type": "urban", "household_size": 3, "effective_month": "2027-02", "rule": "appeal_upheld",
        "appeal_id": "appeal-upheld-cancellation", "cancelled_effective_month": "2027-02",
        "restored_on": date(2027, 2, 3)}, appeal_id="appeal-upheld-cancellation", case_id="case-7")
    dismissed = appeal_decided(hid, "dismissed", "benefit_change", "家庭新增工资收入属实，核定无误")
    reopened = appeal_decided(hid, "upheld", "rejection", "收入计算有误", reopened_at="township_opinion")
    for env in (upheld, restored, dismissed, reopened):
        publish(config, env)
    wait_for(lambda: len(rows(config, "SELECT id FROM message")) >= 4, timeout=20, message="four messages")
    publish(config, restored)                                              # redelivered
    eventlet.sleep(0.5)                                                    # a repeat would show now
    lines = {(m["kind"], m["event_id"]): m for m in outbox_lines(config)}
    assert len(lines) == len(outbox_lines(config)) == 4
    text = {key[1]: m["text"] for key, m in lines.items()}
    masked = mask_resident_id(head_id)
    assert text[upheld["event_id"]] == (f"{name}：您家对停发最低生活保障决定提出的复核申请，经复核成立，撤销原决定，"
                                        f"恢复您家的最低生活保障。理由：停保依据的核查有误（核查对象{masked}）。")
    assert text[restored["event_id"]] == (f"{name}：经复核，您家的最低生活保障已于2027年2月3日恢复，保障人口3人，"
                                          f"2027年2月起停发的保障金将按规定补发。")
    assert text[dismissed["event_id"]] == (f"{name}：您家对变更最低生活保障金决定提出的复核申请，经复核不成立，"
                                           f"维持原决定。理由：家庭新增工资收入属实，核定无误。"
                                           f"如对复核决定不服，可以依法申请行政复议或者提起行政诉讼。")
    assert "从“乡镇（街道）初审”环节重新审核" in text[reopened["event_id"]]
    assert {m["subject"] for m in lines.values()} == {"低保复核结果", "低保待遇恢复"}
    assert sorted(kind for kind, in rows(config, "SELECT kind FROM message")) == [
        "appeal_decided", "appeal_decided", "appeal_decided", "case_restored"]
    # nothing private in the messages or the logs: no ID number, no declared income
    written = (Path(config["DATA_DIR"]) / "messages" / "outbox.jsonl").read_text("utf-8")
    incomes = [str(i["monthly_amount"]) for i in c["data"].get("incomes", [])]
    for member in members:
        assert member["resident_id"] not in written and member["resident_id"] not in caplog.text
    for amount in incomes:
        assert amount not in written
    assert "case_restored" in caplog.text and list_parked(config["AMQP_URI"]) == []


# --- bad input -------------------------------------------------------------------------

def test_bad_input_gives_typed_errors_and_changes_nothing(cluster, sqlite_config):
    c = cluster(sqlite_config, seed=26)
    hid = c["household_id"]
    with officer(sqlite_config) as rpc:
        for call, field in [(lambda: rpc.notify.list_notices("12345"), "unit_code"),
                            (lambda: rpc.notify.render_board("420115009009"), "unit_code"),
                            (lambda: rpc.notify.list_notices(COMMUNITY, active_only="maybe"), "active_only")]:
            with pytest.raises(ValidationFailed) as err:
                call()
            assert field in err.value.fields
        with pytest.raises(NotFound):
            rpc.notify.get_notice("no-such-notice")
        with pytest.raises(NotFound):
            rpc.notify.get_notice(12345)
        with pytest.raises(Forbidden):
            rpc.notify.list_notices(TOWNSHIP)                  # above a community officer's unit
    with sysadmin(sqlite_config) as rpc:
        with pytest.raises(ValidationFailed) as err:
            rpc.notify.close_due_notices("not-a-date")
        assert "as_of" in err.value.fields

    # review events notify cannot act on are parked with the reason, nothing posted
    publish(sqlite_config, notice_request(hid, days=0))
    publish(sqlite_config, notice_request(hid, unit=OTHER_COMMUNITY))
    broken = notice_request(hid)
    del broken["payload"]["stage"]
    publish(sqlite_config, broken)
    parked = wait_for(lambda: len(list_parked(sqlite_config["AMQP_URI"])) == 3
                      and list_parked(sqlite_config["AMQP_URI"]), timeout=20, message="three parked")
    reasons = " ".join(p.reason for p in parked)
    assert "days" in reasons and "unit_code" in reasons and "stage" in reasons
    assert rows(sqlite_config, "SELECT id FROM notice") == [] and outbox(sqlite_config) == []
    assert rows(sqlite_config, "SELECT * FROM inbox") == []
