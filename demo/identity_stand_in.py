"""TEMPORARY: the demo plays identity until the identity service is on main.

Issue #12 says the demo creates its people as accounts through identity
(one per person, with TOTP), logs each in with ``identity.login`` and writes
``<DATA_DIR>/demo/accounts.json``. Until the identity service exists, this
module stands in for it — and nothing else may:

- :func:`demo_context` signs each demo person's token with the deployment's
  identity signing key (``IDENTITY_SIGNING_KEY``, generated into
  ``DATA_DIR/secrets`` when the deployment has none), which only identity
  should hold;
- :func:`register_demo_staff` publishes identity's ``account_created`` events
  for the demo's people, as identity would, and waits until intake's and
  review's staff registries show them.

- :func:`install_stand_in_service_tokens` (``dibao up`` on one host, the
  demo's own services): a service asks ``identity.service_token`` and, only
  while no identity service answers, signs its own with the host's identity
  key.

Replace all three by identity's calls (``users add``, ``login``) when the identity
service lands; the demo's one entry point for "act as this person" is
:func:`demo_context`.
"""
from __future__ import annotations

import time


def _signing_key(config: dict):
    from shared.identity import private_key_from_seed
    from shared.secrets import ensure_secrets, load_secret

    if not config.get("IDENTITY_SIGNING_KEY"):
        ensure_secrets(config, ["IDENTITY_SIGNING_KEY"])
    return private_key_from_seed(load_secret(config, "IDENTITY_SIGNING_KEY"))


def demo_context(config: dict, user: str, name: str, role: str, unit: str) -> dict:
    """Context data acting as one demo person (TEMPORARY: signed here, see the module doc)."""
    from shared.identity import AUTH_TOKEN_KEY, sign_token, token_claims

    claims = token_claims(user, name, unit, [role], "person", None,
                          int(config.get("TOKEN_TTL_SECONDS") or 28800),
                          str(config.get("TOKEN_ISSUER") or "dibao-identity"),
                          str(config.get("TOKEN_AUDIENCE") or "dibao"))
    return {AUTH_TOKEN_KEY: sign_token(_signing_key(config), claims)}


def demo_rpc(config: dict, user: str, name: str, role: str, unit: str, timeout: float | None = None):
    from shared.client import rpc_with

    return rpc_with(config, demo_context(config, user, name, role, unit), timeout)


def register_demo_staff(config: dict, people, district: str, timeout: float = 30.0) -> None:
    """identity's ``account_created`` for each person (``.user .name .role
    .unit``), then wait for intake's and review's registries (TEMPORARY)."""
    from kombu import Connection, Producer

    import contracts.identity  # noqa: F401 - the contract
    from shared.bus import event_exchange
    from shared.events import Event, encode, envelope

    people = list(people)
    with Connection(config["AMQP_URI"]) as conn:
        producer = Producer(conn.default_channel)
        for p in people:
            env = envelope(Event("identity", "account_created", {"user": p.user},
                                 {"user": p.user, "name": p.name, "unit": p.unit, "roles": [p.role]}),
                           None, "demo")
            producer.publish(encode(env), exchange=event_exchange("identity"), routing_key="account_created",
                             content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                             declare=[event_exchange("identity")])
    wanted = {(p.user, p.role) for p in people}
    deadline = time.monotonic() + timeout
    with demo_rpc(config, f"district-{district}-registry", "区低保中心", "district_officer", district) as rpc:
        for service in ("intake", "review"):
            while True:
                try:
                    have = {(s["user"], s["role"]) for s in getattr(rpc, service).list_staff(district)}
                except Exception:  # noqa: BLE001 - the service may not run (review in a partial demo)
                    break
                if wanted <= have or time.monotonic() > deadline:
                    break
                time.sleep(0.2)


def install_stand_in_service_tokens(config: dict) -> None:
    """TEMPORARY (see the module doc): identity.service_token when identity
    answers; else, on a single host that holds the identity key (generated
    into ``DATA_DIR/secrets`` when missing), signed here."""
    from nameko.exceptions import UnknownService

    from shared.identity import DEFAULT_TTL_SECONDS, Role, sign_token, token_claims
    from shared.remote import from_identity, install_test_issuer
    from shared.secrets import SecretError

    def issue(config: dict, service: str) -> tuple[str, float]:
        try:
            return from_identity(config, service)
        except (UnknownService, SecretError):
            claims = token_claims(f"service:{service}", f"{service} service", "", [Role.SERVICE], "service", None,
                                  DEFAULT_TTL_SECONDS, str(config.get("TOKEN_ISSUER") or "dibao-identity"),
                                  str(config.get("TOKEN_AUDIENCE") or "dibao"))
            return sign_token(_signing_key(config), claims), float(claims["exp"])

    _signing_key(config)        # the key exists before any service derives its public half
    install_test_issuer(issue)
