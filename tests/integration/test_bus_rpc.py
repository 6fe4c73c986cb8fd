"""RPC confidentiality (issue 13 item 5, DESIGN §3.4a), attacked as an insider
holding one broker user would: RPC requests and replies carry live tokens,
ID numbers and bank accounts, so only the caller may read a reply and no one
may listen to ``nameko-rpc``. Real RabbitMQ; per-test vhost and users
(``dibao broker setup``). What nameko 2.14.1 declares: shared/rpc_queues.py."""
from __future__ import annotations

import json
import uuid
from urllib.parse import unquote, urlsplit

import pytest
from amqp import Message
from amqp.exceptions import AccessRefused, NotAllowed
from typer.testing import CliRunner

from cli import app
from services.identity.service import IdentityService
from services.intake.service import IntakeService
from services.payments.service import PaymentsService
from shared import rabbit_admin
from shared.broker import connection, rpc_proxy, with_credentials
from shared.errors import NotFound
from shared.identity import Identity, Role
from shared.remote import ServiceRpc
from shared.rpc import rpc
from shared.testing import rpc_as, wait_for
from tests.helpers import DISTRICT
from tests.identity_helpers import with_secrets
from tests.integration.test_cli import write_config

pytestmark = pytest.mark.integration

#: every broker user of the core that may use RPC at all
RPC_USERS = ("intake", "payments", "identity", "gateway", "cli")


@pytest.fixture
def bus(broker_users_config):
    return broker_users_config


@pytest.fixture
def payments(bus, container_factory):
    container = container_factory(PaymentsService, bus)
    container.start()
    return container


def refused(config: dict, who: str, attempt) -> None:
    """``attempt(channel)`` as ``who``'s own broker user is refused by the broker."""
    with pytest.raises(AccessRefused):
        with connection(config, who) as conn:
            attempt(conn.default_channel)


def system_admin(config):
    return rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin", name="系统管理员")


def started_proxy(config: dict, who: str):
    proxy = rpc_proxy(config, who, timeout=20)
    return proxy, proxy.start()


def test_no_broker_user_may_delete_or_redeclare_the_rpc_exchange(bus, payments):
    for who in RPC_USERS:
        refused(bus, who, lambda ch: ch.exchange_delete("nameko-rpc"))
        # re-declared with an alternate exchange of its own, unroutable requests would be its to read
        refused(bus, who, lambda ch, who=who: ch.exchange_declare(
            "nameko-rpc", "topic", durable=True, arguments={"alternate-exchange": f"{who}.events"}))
    with system_admin(bus) as rpc_:
        assert rpc_.payments.ping()["service"] == "payments"          # still there, still routed


def test_no_broker_user_may_bind_a_queue_or_an_exchange_to_nameko_rpc_to_listen(bus, payments):
    for who in RPC_USERS:
        own = f"rpc.reply-{who}-{uuid.uuid4()}"                         # a queue it may declare
        other = "review" if who != "review" else "intake"
        for key in ("#", "*.*", f"{other}.*", f"{other}.get_case", "rpc.*", "rpc.#", f"rpc.reply-{other}-*", "*",
                    str(uuid.uuid4()), f"rpc.reply-{other}-{uuid.uuid4()}"):
            def bind(ch, key=key, own=own):
                ch.queue_declare(own, auto_delete=True)
                ch.queue_bind(own, "nameko-rpc", key)
            refused(bus, who, bind)
    # nor an exchange it may write to (its own events exchange) as a relay of every request
    for who in ("intake", "payments", "gateway"):
        refused(bus, who, lambda ch, who=who: ch.exchange_bind(f"{who}.events", "nameko-rpc", "#"))


def test_a_partner_cannot_listen_to_rpc_in_the_core_nor_hear_it_in_its_own_space(bus, payments):
    uri = rabbit_admin.add_partner(bus, "finance_bureau", {"review": ["case_approved"]})
    parts = urlsplit(uri)                                      # its own credentials, on the core's vhost
    core = with_credentials(uri, unquote(parts.username), unquote(parts.password),
                            vhost=bus["AMQP_URI"].rsplit("/", 1)[1])
    with pytest.raises((AccessRefused, NotAllowed, ConnectionError, OSError)):
        with connection(bus, uri=core, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
            channel = conn.default_channel
            channel.queue_bind(channel.queue_declare("", exclusive=True).queue, "nameko-rpc", "#")
    # in its own vhost it may bind what it likes: no RPC of the core ever arrives there
    with connection(bus, uri=uri) as conn:
        channel = conn.default_channel
        channel.exchange_declare("nameko-rpc", "topic", durable=True)
        spy = channel.queue_declare("", exclusive=True).queue
        channel.queue_bind(spy, "nameko-rpc", "#")
        with system_admin(bus) as rpc_:
            assert rpc_.payments.ping()["service"] == "payments"
        assert channel.basic_get(spy) is None


def test_a_service_cannot_read_a_callers_replies_nor_bind_the_reply_key_it_learnt(bus, payments):
    proxy, calls = started_proxy(bus, "cli")
    try:
        assert calls.payments.ping()["service"] == "payments"             # the CLI's RPC works
        replies = proxy._reply_listener.queue.name
        key = proxy._reply_listener.routing_key              # what every request says in reply_to
        assert replies.startswith("rpc.reply-cli-") and key == replies
        for who in ("payments", "intake", "gateway"):          # payments answered it: it knows the key
            refused(bus, who, lambda ch: ch.basic_get(replies))
            refused(bus, who, lambda ch: ch.basic_consume(replies, callback=lambda m: None))
            refused(bus, who, lambda ch: ch.queue_purge(replies))
            refused(bus, who, lambda ch: ch.queue_delete(replies))

            def take_over(ch, who=who):                        # its own reply queue, bound with the caller's key
                own = f"rpc.reply-{who}-{uuid.uuid4()}"
                ch.queue_declare(own, auto_delete=True)
                ch.queue_bind(own, "nameko-rpc", key)
            refused(bus, who, take_over)
        assert calls.payments.ping()["service"] == "payments"             # and the caller is unharmed
    finally:
        proxy.stop()


def test_a_request_whose_reply_the_broker_refuses_does_not_bring_the_service_down(bus, payments):
    """A broken or hostile caller's ``reply_to`` that nobody may publish to:
    in plain nameko the refused reply kills the whole container."""
    with connection(bus, "intake") as conn:
        channel = conn.channel()
        channel.confirm_select()
        for reply_to in ("not-allowed", "#"):
            channel.basic_publish_confirm(
                Message(json.dumps({"args": [], "kwargs": {}}), content_type="application/json",
                        reply_to=reply_to, correlation_id=str(uuid.uuid4())),
                exchange="nameko-rpc", routing_key="payments.ping")
    wait_for(lambda: queue_depth(bus, "rpc-payments") == 0, timeout=20, message="both requests taken")
    with system_admin(bus) as rpc_:
        assert rpc_.payments.ping()["service"] == "payments"


def queue_depth(config: dict, queue: str) -> int:
    with connection(config) as conn:                               # the administrator, passively
        return conn.default_channel.queue_declare(queue, passive=True).message_count


class Asker:
    """review's broker user calling intake over RPC as the service itself
    (shared.remote.ServiceRpc, exactly as review's handlers do)."""

    name = "review"
    caller = Identity()
    remote = ServiceRpc()

    @rpc
    def household(self, household_id):
        return self.remote.intake.get_household(household_id)


def test_rpc_between_services_works_as_their_own_broker_users(bus, container_factory):
    container_factory(IntakeService, bus).start()
    asker = container_factory(Asker, bus)
    asker.start()
    assert asker.config["AMQP_URI"] != bus["AMQP_URI"]        # review's own user, not the administrator
    with system_admin(bus) as rpc_:
        with pytest.raises(NotFound):                          # intake's typed answer came back through review
            rpc_.review.household("hh-nobody")


def test_the_cli_calls_identity_as_its_own_broker_user(bus, container_factory, tmp_path, monkeypatch):
    config = with_secrets(bus)
    container_factory(IdentityService, config).start()
    # AMQP_URI's own credentials do not open the broker: only the cli user's can have answered
    unusable = dict(config, AMQP_URI=with_credentials(config["AMQP_URI"], "nobody", "wrong"))
    config_file = write_config(tmp_path / "dibao.yml", unusable)
    monkeypatch.setenv("DIBAO_SESSION_FILE", str(tmp_path / "session.json"))
    made = CliRunner().invoke(app, ["--config", config_file, "users", "bootstrap", "--user", "sec.admin",
                                    "--name", "安全管理员", "--unit", DISTRICT])
    assert made.exit_code == 0, made.output
    assert "one-time password" in made.output


