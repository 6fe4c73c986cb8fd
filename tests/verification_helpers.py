"""Driving verification (核对) in tests: a deployment with broker users and two
partner bureaus answering from CSVs through the reference responder, each a
separate nameko container on its own partner URI."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone

import sqlalchemy as sa
from amqp import Message
from kombu import Connection

from cli.responder import SEEN, responder
from shared import rabbit_admin
from shared.identity import Role
from shared.testing import rpc_as, wait_for
from tests.helpers import COMMUNITY, DISTRICT, household

BUREAUS = ("public_security", "bank")
VEHICLE = "大众帕萨特 鄂A12345"


def officer(config):
    return rpc_as(config, Role.COMMUNITY_OFFICER, COMMUNITY, user="wang.officer", name="王专干")


def district(config):
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


def add_bureaus(config) -> dict[str, str]:
    return {b: rabbit_admin.add_partner(config, b, {}, (), verification=True) for b in BUREAUS}


def write_data(tmp_path, rows: dict[str, list[tuple]]) -> dict:
    """One CSV per bureau: {bureau: [(resident_id, kind, description, amount, as_of)]}."""
    paths = {}
    for bureau in BUREAUS:
        path = tmp_path / f"{bureau}.csv"
        lines = ["resident_id,kind,description,amount,as_of"]
        lines += [",".join(str(v) for v in row) for row in rows.get(bureau, [])]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths[bureau] = path
    return paths


def start_responders(container_factory, uris: dict, data: dict) -> None:
    for bureau, uri in uris.items():
        container_factory(responder(bureau, data[bureau], uri), {"AMQP_URI": uri, "serializer": "json"}).start()


def registered(config, seed: int = 3, authorize: bool = True) -> dict:
    """A household registered at the community (and its authorization 授权书 on file)."""
    data = household(seed)
    with officer(config) as rpc:
        ids = rpc.intake.register_household(data)
        h = rpc.intake.get_household(ids["household_id"])
        if authorize:
            rpc.intake.register_document({"household_id": h["id"], "kind": "authorization",
                                          "title": "家庭经济状况核对授权书", "document_date": date.today().isoformat(),
                                          "signed_by": [m["id"] for m in h["members"]]})
    return h


def ask(config, h: dict, application_id: str | None = None) -> dict:
    with officer(config) as rpc:
        return rpc.verification.request_verification({"household_id": h["id"], "application_id": application_id})


def report(config, household_id: str) -> dict:
    with officer(config) as rpc:
        return rpc.verification.report({"household_id": household_id})


def answered(config, household_id: str, timeout: float = 40) -> dict:
    return wait_for(lambda: (lambda r: r if r["complete"] else None)(report(config, household_id)),
                    timeout=timeout, message="every bureau's answer")


def answer(request_id: str, bureau: str, member_refs, outcome: str = "no_record", findings=None, **more) -> dict:
    return {"type": "verification_answer", "version": 1, "message_id": str(uuid.uuid4()), "request_id": request_id,
            "bureau": bureau, "answered_at": datetime.now(timezone.utc).isoformat(),
            "members": [{"member_ref": ref, "outcome": outcome, "findings": findings or []} for ref in member_refs],
            **more}


def publish_answer(uri: str, body, user_id: str | None = None, exchange: str = "verification.answers") -> None:
    """As a bureau's IT publishes (in its own vhost), or anyone else with ``uri``."""
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    with Connection(uri) as conn:
        channel = conn.channel()
        channel.confirm_select()
        props = {"user_id": user_id} if user_id else {}
        channel.basic_publish_confirm(Message(raw, content_type="application/json", delivery_mode=2, **props),
                                      exchange=exchange, routing_key="verification_answer")


def verification_rows(config, sql: str) -> list:
    from shared.db import make_engine

    engine = make_engine(config["DB_URIS"]["verification"])
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    finally:
        engine.dispose()


def seen_clear() -> None:
    for key in SEEN:
        SEEN[key].clear()


def register_staff_as_identity(config, services=("intake", "review")) -> None:
    """tests.helpers.register_staff, with identity's events published as identity's broker user
    (the services refuse any other publisher when broker users are on)."""
    from datetime import datetime, timezone

    from shared.testing import publish_event
    from tests.helpers import STAFF

    for person in STAFF:
        publish_event(config, {"event_id": str(uuid.uuid4()), "type": "account_created", "source": "identity",
                               "version": 1, "occurred_at": datetime.now(timezone.utc).isoformat(), "actor": None,
                               "subject": {"user": person["user"]}, "correlation_id": "test",
                               "payload": {"user": person["user"], "name": person["name"], "unit": person["unit"],
                                           "roles": [person["role"]]}})
    wanted = {(p["user"], p["role"]) for p in STAFF}
    with district(config) as rpc:
        for service in services:
            wait_for(lambda: wanted <= {(s["user"], s["role"]) for s in getattr(rpc, service).list_staff(DISTRICT)},
                     timeout=20, message=f"{service}'s staff registry")
