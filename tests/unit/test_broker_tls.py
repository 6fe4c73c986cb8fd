"""TLS to the broker (issue 13 item 5): with ``amqps://`` and ``AMQP_SSL``
every connection — Dibao's own kombu connections (shared.broker.connection,
the relay) and nameko's (its RPC proxy, and a container's config under
``nameko run``) — checks the broker's certificate against the CA, checks
its name against AMQP_URI's host, and presents the component's own
certificate. Against a TLS peer of the test's own CA (tests/tls_helpers.py):
the shared RabbitMQ is not reconfigured (docs/security.md has the broker's
listener settings)."""
from __future__ import annotations

import ssl

import pytest
import yaml

from shared.broker import connection, rpc_proxy, ssl_options
from shared.config import ConfigError, complete_amqp_ssl
from shared.identity import Identity
from shared.outbox import ConfirmingPublisher
from shared.rpc import rpc
from tests.tls_helpers import AMQP_HEADER, Authority, TlsPeer, write_pair


#: the broker's name in its certificate (beside 127.0.0.1, where the test's peer listens)
BROKER_NAME = "rabbitmq.dibao.test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The deployment's CA, the broker's certificate for localhost, one for
    another name, a client certificate; and an outsider's CA and broker."""
    d = tmp_path_factory.mktemp("pki")
    ca, rogue = Authority("dibao test CA"), Authority("someone else's CA")
    files = {"ca": ca.write(d, "ca"), "rogue_ca": rogue.write(d, "rogue")}
    files["broker"] = write_pair(d, "broker", *ca.issue(BROKER_NAME, dns=(BROKER_NAME,), ips=("127.0.0.1",)))
    files["misnamed"] = write_pair(d, "misnamed", *ca.issue("broker.example", dns=("broker.example",)))
    files["impostor"] = write_pair(d, "impostor", *rogue.issue(BROKER_NAME, dns=(BROKER_NAME,),
                                                               ips=("127.0.0.1",)))
    files["client"] = write_pair(d, "client", *ca.issue("dibao-payments", client=True))
    return files


def tls_config(pki, port: int, complete: bool = True, **extra) -> dict:
    cert, key = pki["client"]
    config = {"AMQP_URI": f"amqps://dibao-payments:secret@127.0.0.1:{port}/dibao", "serializer": "json",
              "AMQP_SSL": {"ca_certs": pki["ca"], "certfile": cert, "keyfile": key, **extra}}
    if complete:
        complete_amqp_ssl(config)
    return config


def kombu_connect(config):
    with connection(config, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=0)


def relay_connect(config):
    ConfirmingPublisher(config["AMQP_URI"], "payments", restricted=True, ssl=ssl_options(config)).connect()


def nameko_proxy(config):
    rpc_proxy(config, "cli", timeout=5).start()


def attempt(pki, server: str, connect, config_extra=None, ca: str = "ca",
            complete: bool = True) -> tuple[dict, BaseException | None]:
    """Connect through ``connect`` to a TLS peer presenting ``server``'s
    certificate; (what the peer saw, what the client raised)."""
    cert, key = pki[server]
    with TlsPeer(cert, key, pki[ca]) as peer:
        config = tls_config(pki, peer.port, complete, **(config_extra or {}))
        raised = None
        try:
            connect(config)
        except BaseException as exc:  # noqa: BLE001 - the peer is no broker: every attempt ends in an error
            raised = exc
        return peer.next_report(), raised


@pytest.mark.parametrize("connect", [kombu_connect, relay_connect, nameko_proxy],
                         ids=["dibao-kombu", "relay", "nameko-rpc-proxy"])
def test_every_connection_verifies_the_broker_and_presents_its_own_certificate(pki, connect):
    seen, _ = attempt(pki, "broker", connect)
    assert "error" not in seen, seen
    assert seen["client"] == "dibao-payments"                 # the client certificate, verified by the peer's CA
    assert seen["version"] in ("TLSv1.2", "TLSv1.3")
    assert seen["header"] == AMQP_HEADER                      # then AMQP itself, over TLS


@pytest.mark.parametrize("connect", [kombu_connect, nameko_proxy], ids=["dibao-kombu", "nameko-rpc-proxy"])
def test_a_broker_certified_by_another_ca_is_refused_before_a_byte_of_amqp(pki, connect):
    seen, raised = attempt(pki, "impostor", connect)
    assert "header" not in seen and "error" in seen, seen
    assert isinstance(raised, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(raised), raised


@pytest.mark.parametrize("connect", [kombu_connect, nameko_proxy], ids=["dibao-kombu", "nameko-rpc-proxy"])
def test_a_broker_certificate_for_another_name_is_refused(pki, connect):
    seen, raised = attempt(pki, "misnamed", connect)              # AMQP_URI's host 127.0.0.1: not its name
    assert "header" not in seen and "error" in seen, seen
    assert "mismatch" in str(raised) and "127.0.0.1" in str(raised), raised


@pytest.mark.parametrize("connect", [kombu_connect, nameko_proxy], ids=["dibao-kombu", "nameko-rpc-proxy"])
def test_a_broker_reached_by_address_is_checked_against_the_name_it_is_configured_with(pki, connect):
    named = {"server_hostname": BROKER_NAME}
    seen, _ = attempt(pki, "broker", connect, named)
    assert seen.get("sni") == BROKER_NAME and seen.get("header") == AMQP_HEADER, seen   # sent, then checked
    seen, raised = attempt(pki, "misnamed", connect, named)
    assert "header" not in seen and "mismatch" in str(raised), (seen, raised)


@pytest.mark.parametrize("connect", [kombu_connect, relay_connect, nameko_proxy],
                         ids=["dibao-kombu", "relay", "nameko-rpc-proxy"])
def test_a_config_as_nameko_run_loaded_it_is_completed_by_every_connection_we_make(pki, connect):
    """The gateway answers no RPC (no RPC consumer to complete its config):
    its proxies and Dibao's own connections complete AMQP_SSL themselves."""
    seen, raised = attempt(pki, "misnamed", connect, complete=False)
    assert "header" not in seen and "mismatch" in str(raised), (seen, raised)


def test_without_the_completion_kombu_would_not_check_the_name(pki):
    """Why AMQP_SSL is completed: nameko passes it to kombu as it is, and kombu
    checks the host name only when ``server_hostname`` is there."""
    cert, key = pki["misnamed"]
    with TlsPeer(cert, key, pki["ca"]) as peer:
        client_cert, client_key = pki["client"]
        from kombu import Connection

        raw = {"ca_certs": pki["ca"], "certfile": client_cert, "keyfile": client_key}
        with pytest.raises(Exception):
            with Connection(f"amqps://u:p@127.0.0.1:{peer.port}/v", ssl=raw, connect_timeout=5) as conn:
                conn.ensure_connection(max_retries=0)
        assert peer.next_report()["header"] == AMQP_HEADER      # the misnamed broker was accepted


class Answering:
    name = "payments"
    caller = Identity()

    @rpc
    def ping(self):
        return {}


def test_a_service_container_completes_the_config_nameko_run_loaded(pki):
    """``nameko run --config config.yml`` reads the file itself: the RPC
    entrypoint every service has completes AMQP_SSL before anything connects."""
    from nameko.containers import ServiceContainer

    cert, key = pki["client"]
    raw = {"AMQP_URI": "amqps://u:p@localhost:5671/dibao", "serializer": "json",
           "AMQP_SSL": {"ca_certs": pki["ca"], "certfile": cert, "keyfile": key}}
    ServiceContainer(Answering, raw)
    assert raw["AMQP_SSL"]["server_hostname"] is None and raw["AMQP_SSL"]["cert_reqs"] == ssl.CERT_REQUIRED


def test_the_setting_is_completed_and_refused_when_it_cannot_work(pki, tmp_path):
    assert complete_amqp_ssl({"AMQP_URI": "pyamqp://guest:guest@127.0.0.1:5672/"}) is None
    bare = complete_amqp_ssl({"AMQP_URI": "amqps://u:p@broker.example/dibao", "AMQP_SSL": None})
    assert bare == {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": None,
                    "tls_minimum_version": ssl.TLSVersion.TLSv1_2}        # the system's CAs, the name checked
    cert, key = pki["client"]
    good = {"AMQP_URI": "amqps://u:p@broker.example/dibao",
            "AMQP_SSL": {"ca_certs": pki["ca"], "certfile": cert, "keyfile": key, "tls_minimum_version": "TLSv1_3"}}
    complete_amqp_ssl(good)
    assert good["AMQP_SSL"]["tls_minimum_version"] == ssl.TLSVersion.TLSv1_3
    assert yaml.safe_load(yaml.safe_dump(good)) == good                    # still plain YAML
    assert complete_amqp_ssl(dict(good)) == good["AMQP_SSL"]               # idempotent
    for setting, problem in (({"ca_certs": str(tmp_path / "none.pem")}, "AMQP_SSL.ca_certs"),
                             ({"keyfile": key}, "AMQP_SSL.keyfile without"),
                             ({"ca_certs": pki["ca"], "cert_reqs": 0}, "AMQP_SSL.cert_reqs"),
                             ({"ca_certs": pki["ca"], "tls_minimum_version": "TLSv1"}, "TLS 1.2 at least"),
                             ("yes", "a mapping")):
        with pytest.raises(ConfigError, match=problem):
            complete_amqp_ssl({"AMQP_URI": "amqps://u:p@h/v", "AMQP_SSL": setting})


def test_load_config_completes_amqp_ssl(pki, tmp_path, monkeypatch):
    from shared.config import DEFAULT_CONFIG, load_config

    monkeypatch.setenv("DIBAO_AMQP_URI", "amqps://u:p@broker.example:5671/dibao")
    monkeypatch.setenv("DIBAO_AMQP_SSL", "{ca_certs: %s}" % pki["ca"])
    config = load_config(DEFAULT_CONFIG)
    assert config["AMQP_SSL"]["ca_certs"] == pki["ca"] and config["AMQP_SSL"]["server_hostname"] is None
    monkeypatch.delenv("DIBAO_AMQP_SSL")
    monkeypatch.setenv("DIBAO_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/")
    assert load_config(DEFAULT_CONFIG)["AMQP_SSL"] is None
