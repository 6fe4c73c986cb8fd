"""The bus boundary (issue 13, DESIGN §3.4a), attacked as an insider with plain
broker access would: each service its own broker user, the publisher
authenticated, partner bureaus confined to a space of their own, and what
partners receive partner-safe. Real RabbitMQ; per-test vhost and users."""
from __future__ import annotations

import json
import re
import uuid
from collections import namedtuple

import pytest
from amqp import Message
from amqp.exceptions import AccessRefused, NotAllowed, PreconditionFailed
from kombu import Connection
from nameko.events import event_handler
from typer.testing import CliRunner

from services.payments.service import PaymentsService
from shared import rabbit_admin
from shared.broker import service_config, uri_for, user_name, with_credentials
from shared.bus import RETRY_EXCHANGE
from cli import app
from shared.deadletter import list_parked
from shared.events import encode
from shared.identity import Role
from shared.outbox import ConfirmingPublisher
from shared.testing import rpc_as, wait_for
from tests.helpers import DISTRICT
from tests.payments_helpers import case_approved, caseworker, checkin, envelope, ledger_case, month

pytestmark = pytest.mark.integration

CASE_QUEUE = "evt-review-case_approved--payments.on_case_approved"
CHECKIN_QUEUE = "evt-intake-checkin_recorded--payments.on_checkin_recorded"
Row = namedtuple("Row", "id event_id exchange routing_key body correlation_id")


@pytest.fixture
def bus(broker_users_config):
    """The test's config with its own broker users (dibao broker setup)."""
    return broker_users_config


@pytest.fixture
def payments(bus, container_factory):
    container = container_factory(PaymentsService, service_config(bus, "payments"))
    container.start()
    return container


def publish_as(uri: str, env: dict, exchange: str | None = None, routing_key: str | None = None,
               user_id: str | None = None) -> None:
    """Publish with confirms; raises what the broker answers (the channel closes)."""
    with Connection(uri) as conn:
        channel = conn.channel()
        channel.confirm_select()
        props = {"user_id": user_id} if user_id else {}
        channel.basic_publish_confirm(
            Message(encode(env), content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                    message_id=env["event_id"], **props),
            exchange=f"{env['source']}.events" if exchange is None else exchange,
            routing_key=env["type"] if routing_key is None else routing_key)


def relay_as(config: dict, service: str, env: dict) -> None:
    """Publish as the service's own relay does (user_id, partner form)."""
    publisher = ConfirmingPublisher(uri_for(config, service), service, restricted=True)
    publisher.connect()
    try:
        confirmed = publisher.publish_batch([Row(1, env["event_id"], f"{service}.events", env["type"],
                                                 encode(env), "test")])
    finally:
        publisher.close()
    assert confirmed == {1}


def system_admin(config):
    return rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin", name="系统管理员")


def cases(config) -> list:
    with caseworker(config) as rpc:
        found = rpc.payments.list_cases({})
    return found["items"] if isinstance(found, dict) else found


def ping(config, service: str) -> dict:
    with system_admin(config) as rpc:
        return getattr(rpc, service).ping()


def admin_uri(config) -> str:
    return config["AMQP_URI"]           # the test vhost as guest, the administrator here


# --- item 1: a broker user per service -------------------------------------------------

def test_setup_is_idempotent_and_each_service_connects_as_its_own_user(bus, payments):
    rabbit_admin.setup(bus)                                    # again: nothing changes, nothing breaks
    api = rabbit_admin.ManagementApi.from_config(bus)
    vhost = bus["AMQP_URI"].rsplit("/", 1)[1]

    def users():
        conns = api.request("GET", f"/vhosts/{vhost}/connections") or []
        return {c["user"] for c in conns}

    seen = wait_for(lambda: users() if user_name(bus, "payments") in users() else None, timeout=15,
                    message="payments connected")
    assert seen <= {user_name(bus, "payments"), user_name(bus, "cli"), "guest"}
    assert ping(bus, "payments")["bus_alarms"] == 0            # the operators' tool user reaches it by RPC


def test_nothing_may_be_declared_outside_ones_own_names(bus):
    intake = uri_for(bus, "intake")
    with pytest.raises(AccessRefused):                         # deleting another's exchange
        with Connection(intake) as conn:
            conn.default_channel.exchange_delete("review.events")
    with pytest.raises(AccessRefused):                         # deleting the audit queue
        with Connection(intake) as conn:
            conn.default_channel.queue_delete("dibao.audit")
    with pytest.raises(AccessRefused):                         # a queue of another service's name
        with Connection(intake) as conn:
            conn.default_channel.queue_declare(CASE_QUEUE, durable=True)


# --- item 2: the publisher is authenticated ---------------------------------------------

def test_a_forged_case_approved_is_parked_with_its_reason_and_pays_nothing(bus, payments):
    alarms = ping(bus, "payments")["bus_alarms"]               # (a counter per process)
    forged = case_approved("case-forged", month(-1), "9999.00")
    # as intake's user: the broker refuses to let it publish to review.events at all
    with pytest.raises(AccessRefused):
        publish_as(uri_for(bus, "intake"), forged)
    # claiming review's user from another connection: the broker refuses the user_id
    with pytest.raises(PreconditionFailed):
        publish_as(uri_for(bus, "intake"), forged, exchange="intake.events", user_id=user_name(bus, "review"))
    # as the administrator (guest), with no user_id: delivered, but parked — not applied
    publish_as(admin_uri(bus), forged)
    parked = wait_for(lambda: [p for p in list_parked(bus) if p.message_id == forged["event_id"]], timeout=20,
                      message="the forged approval parked")
    assert f"is not {user_name(bus, 'review')}" in parked[0].reason
    assert parked[0].handler == "payments.on_case_approved"
    # the genuine approval (review's own relay) is applied: the check can tell them apart
    genuine = case_approved("case-genuine", month(-1), "410.00")
    relay_as(bus, "review", genuine)
    ledger_case(bus, "case-genuine")
    assert [c["case_id"] for c in cases(bus)] == ["case-genuine"]
    assert ping(bus, "payments")["bus_alarms"] == alarms + 1
    # replaying the parked forgery does not launder it: parked again, still not applied
    with system_admin(bus) as rpc:                                    # the administrator's recorded command
        assert rpc.payments.replay_dead_letters(forged["event_id"]) == {"replayed": 1}
    wait_for(lambda: [p for p in list_parked(bus) if p.message_id == forged["event_id"]], timeout=20,
             message="the replayed forgery parked again")
    assert [c["case_id"] for c in cases(bus)] == ["case-genuine"]


def test_a_forged_checkin_cannot_be_put_straight_into_payments_queue(bus, payments):
    forged = checkin("hh-x", month(0))
    for who in ("intake", "review", "cli"):                    # through the default exchange
        with pytest.raises(AccessRefused):
            publish_as(uri_for(bus, who), forged, exchange="", routing_key=CHECKIN_QUEUE)
    # through the retry exchange (which services may use): delivered, refused by payments
    publish_as(uri_for(bus, "review"), forged, exchange=RETRY_EXCHANGE, routing_key=CHECKIN_QUEUE,
               user_id=user_name(bus, "review"))
    parked = wait_for(lambda: [p for p in list_parked(bus) if p.message_id == forged["event_id"]], timeout=20,
                      message="the retry-path forgery parked")
    assert f"is not {user_name(bus, 'intake')}" in parked[0].reason


def test_no_broker_user_can_listen_to_rpc(bus, payments):
    spy = f"rpc.reply-intake-{uuid.uuid4()}"                  # a reply queue intake may declare
    for routing_key in ("#", "payments.*", "*.*"):
        with pytest.raises(AccessRefused):
            with Connection(uri_for(bus, "intake")) as conn:
                channel = conn.default_channel
                channel.queue_declare(spy, auto_delete=True)
                channel.queue_bind(spy, "nameko-rpc", routing_key)
    with pytest.raises(AccessRefused):                         # nor read payments' RPC queue
        with Connection(uri_for(bus, "review")) as conn:
            conn.default_channel.basic_get("rpc-payments")
    with pytest.raises(AccessRefused):                         # nor the audit's queue
        with Connection(uri_for(bus, "payments")) as conn:
            conn.default_channel.basic_get("dibao.audit")


# --- items 3 and 4: partners ------------------------------------------------------------

def dibao(config: dict, tmp_path, *args: str):
    import yaml

    path = tmp_path / "dibao-config.yml"
    plain = {k: v for k, v in config.items() if not callable(v)}
    plain["DB_URIS"] = dict(config["DB_URIS"])
    path.write_text(yaml.safe_dump(plain, allow_unicode=True), encoding="utf-8")
    return CliRunner().invoke(app, ["--config", str(path), *args], env={"COLUMNS": "200"})


received: list = []


class FinanceBureau:
    """A partner bureau's plain nameko service, unchanged."""

    name = "finance_bureau"

    @event_handler("review", "case_approved")
    def on_case_approved(self, event):
        received.append(event)

    @event_handler("review", "review_due")
    def on_review_due(self, event):
        received.append(event)

    @event_handler("review", "notice_requested")
    def on_notice_requested(self, event):      # internal: must never come
        received.append(event)


ID_NUMBER = re.compile(r"\d{17}[\dXx]")


def test_a_partner_receives_case_approved_without_figures_and_reaches_nothing_in_the_core(
        bus, payments, container_factory, tmp_path):
    added = dibao(bus, tmp_path, "broker", "partner-add", "finance_bureau",
                  "--handler", "review.case_approved=finance_bureau.on_case_approved")
    assert added.exit_code == 0, added.output
    uri = added.output.strip().splitlines()[-1]
    assert uri.startswith("amqp://") and "finance_bureau" in uri
    # published before the partner ever connected: it waits for it
    approved = case_approved("case-p1", month(-1), "1234.56", size=3, gap="1234.56", standard="876.54")
    relay_as(bus, "review", approved)
    received.clear()
    partner = container_factory(FinanceBureau, {"AMQP_URI": uri, "serializer": "json"})
    partner.start()
    [event] = wait_for(lambda: received[:], timeout=30, message="the partner's case_approved")
    assert event["event_id"] == approved["event_id"] and event["type"] == "case_approved"
    assert event["subject"]["case_id"] == "case-p1"
    payload = event["payload"]
    assert payload["household_size"] == 3 and payload["community_code"] == approved["payload"]["community_code"]
    for figure in ("monthly_benefit", "standard_amount", "benefit_gap", "vulnerable_members"):
        assert figure not in payload
    text = json.dumps(event, ensure_ascii=False)
    assert "1234.56" not in text and "876.54" not in text and not ID_NUMBER.search(text)
    ledger_case(bus, "case-p1")                                # the core took the full event
    # an internal event never comes; one partner-safe as it is comes unchanged (after it, in order)
    subject = {"household_id": "hh-case-p1", "case_id": "case-p1"}
    relay_as(bus, "review", envelope("review", "notice_requested", subject, {
        "stage": "result", "unit_code": "420115001001", "days": 7, "household_size": 3,
        "monthly_benefit": "410.00", "blocking": False}))
    due = envelope("review", "review_due", subject, {
        "case_id": "case-p1", "household_id": "hh-case-p1", "community_code": "420115001001",
        "township_code": "420115001", "category": "stable", "due_on": "2027-01-05"})
    relay_as(bus, "review", due)
    wait_for(lambda: len(received) >= 2, timeout=30, message="the partner's review_due")
    assert [e["type"] for e in received] == ["case_approved", "review_due"]
    assert received[1]["payload"] == due["payload"]

    listed = dibao(bus, tmp_path, "broker", "partners")
    assert listed.exit_code == 0 and "finance_bureau" in listed.output and "case_approved" in listed.output

    # nothing the partner does reaches the core
    forged = case_approved("case-from-partner", month(-1), "9999.00")
    publish_as(uri, forged)                                    # its own space's review.events: confined there
    core = with_credentials(uri, *_credentials(uri), vhost=bus["AMQP_URI"].rsplit("/", 1)[1])
    for attempt in (lambda ch: ch.basic_publish(Message("{}"), exchange="review.events",
                                                routing_key="case_approved"),
                    lambda ch: ch.queue_bind(ch.queue_declare("", exclusive=True).queue, "nameko-rpc", "#"),
                    lambda ch: ch.basic_get("dibao.audit")):
        with pytest.raises((AccessRefused, NotAllowed, ConnectionError, OSError)):
            with Connection(core, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=1)
                attempt(conn.default_channel)
    assert [c["case_id"] for c in cases(bus)] == ["case-p1"]

    removed = dibao(bus, tmp_path, "broker", "partner-remove", "finance_bureau")
    assert removed.exit_code == 0, removed.output
    with pytest.raises((AccessRefused, NotAllowed, ConnectionError, OSError)):
        with Connection(uri, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)


class PlainPartner:
    """A partner's nameko service whose handlers nobody told us: the names
    `partner-add` assumes by default (the service named after the partner,
    ``on_<event type>``)."""

    name = "finance_bureau"

    @event_handler("review", "case_approved")
    def on_case_approved(self, event):
        received.append(event)


def test_partner_add_alone_keeps_what_is_published_before_the_partner_first_connects(
        bus, container_factory, tmp_path):
    added = dibao(bus, tmp_path, "broker", "partner-add", "finance_bureau")
    assert added.exit_code == 0, added.output
    uri = added.output.strip().splitlines()[-1]
    queue = "evt-review-case_approved--finance_bureau.on_case_approved"
    assert queue in added.output
    approved = case_approved("case-early", month(-1), "410.00")
    relay_as(bus, "review", approved)                          # before the partner's service ever ran
    api = rabbit_admin.ManagementApi.from_config(bus)
    vhost = rabbit_admin.partner_user(bus, "finance_bureau")
    # the broker applies the retention policy to a new queue a moment after it exists: wait for both
    waiting = wait_for(lambda: (lambda qu: qu if qu and qu.get("messages") == 1
                                and qu.get("policy") == rabbit_admin.RETENTION_POLICY else None)(
        api.request("GET", f"/queues/{rabbit_admin.q(vhost)}/{rabbit_admin.q(queue)}", missing_ok=True)),
        timeout=30, message="the approval waiting in the partner's queue, under the retention policy")
    assert waiting["durable"]                                                                # kept, for a while
    received.clear()
    container_factory(PlainPartner, {"AMQP_URI": uri, "serializer": "json"}).start()
    [event] = wait_for(lambda: received[:], timeout=30, message="the early approval delivered")
    assert event["event_id"] == approved["event_id"] and "monthly_benefit" not in event["payload"]


def _credentials(uri: str) -> tuple[str, str]:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(uri)
    return unquote(parts.username), unquote(parts.password)


def test_internal_events_never_reach_a_partner_and_forms_leave_the_figures_out():
    from cli.broker import partner_events
    from shared.events import CATALOGUE, partner_body

    receives = partner_events()
    assert "notice_requested" not in receives["review"]        # carries the benefit
    assert "file_viewed" not in receives["intake"]
    assert "command_recorded" not in receives.get("payments", [])
    money_fields = {"monthly_benefit", "benefit_gap", "standard_amount", "old_benefit", "new_benefit", "amount",
                    "total"}
    for (source, name), spec in CATALOGUE.items():
        if spec.partner_fields is None or spec.schema.__module__.split(".")[0] != "contracts":
            continue
        if source != "payments" or name != "standard_changed":   # the published standards themselves
            assert not spec.partner_fields & money_fields, f"{source}.{name}"
    env = case_approved("case-q", "2026-01", "410.00")
    assert set(json.loads(partner_body("review", "case_approved", encode(env)))["payload"]) == \
        CATALOGUE[("review", "case_approved")].partner_fields


def test_the_audit_records_only_events_their_source_published(bus, container_factory):
    from services.audit.service import AuditService
    from tests.audit_helpers import records, recorded

    audit = container_factory(AuditService, service_config(bus, "audit"))
    audit.start()
    forged = case_approved("case-forged-a", month(-1), "9999.00")
    publish_as(admin_uri(bus), forged)                         # no user_id: not review's
    genuine = case_approved("case-genuine-a", month(-1), "410.00")
    relay_as(bus, "review", genuine)
    recorded(bus, f"event_id = '{genuine['event_id']}'")
    parked = wait_for(lambda: [p for p in list_parked(bus) if p.message_id == forged["event_id"]], timeout=20,
                      message="the forgery parked by the audit ingest")
    assert parked[0].handler == "audit.ingest" and f"is not {user_name(bus, 'review')}" in parked[0].reason
    assert not records(bus, f"event_id = '{forged['event_id']}'")
    assert ping(bus, "audit")["bus_alarms"] >= 1
    with system_admin(bus) as rpc:                                    # a replay does not launder it either
        assert rpc.audit.replay_dead_letters(forged["event_id"]) == {"replayed": 1}
    wait_for(lambda: [p for p in list_parked(bus) if p.message_id == forged["event_id"]], timeout=20,
             message="the replayed forgery parked again")
    assert not records(bus, f"event_id = '{forged['event_id']}'")
