"""Driving the audit in tests: a case taken through the real entry review,
contract events published as their producers would, the audit record read back."""
from __future__ import annotations

from datetime import date, datetime, timezone

import sqlalchemy as sa

from services.audit.models import audit_records
from shared.db import make_engine
from shared.identity import Role
from shared.testing import publish_event, rpc_as, wait_for
from tests.helpers import DISTRICT, household, investigation, officer
from tests.review_helpers import (close_notice, committee, community, deputy, director, evaluation, review_state,
                                  township)


def auditor(config, unit=DISTRICT, role=Role.AUDITOR, user="he.auditor", name="何审计"):
    return rpc_as(config, role, unit, user=user, name=name)


def approved_case(config, seed: int) -> dict:
    """A household taken through the jiangxia entry review to approval."""
    data = household(seed=seed)
    data["incomes"] = []
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": date.today().isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    app_id = app["id"]
    review_state(config, app_id, step="community_evaluation")
    with community(config) as rpc:
        rpc.review.record_evaluation(evaluation(app_id))
    close_notice(config, review_state(config, app_id, step="community_notice"))
    review_state(config, app_id, step="township_review")
    with township(config) as rpc:
        f = rpc.review.record_township_review(committee(app_id))
    close_notice(config, f)
    review_state(config, app_id, step="joint_review")
    with deputy(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
    with director(config) as rpc:
        rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
    with community(config) as rpc:
        done = rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})
    return {"household_id": created["household_id"], "application_id": app_id, "case": done["case"],
            "size": len(data["members"])}


def publish(config, source: str, kind: str, subject: dict, payload: dict, version: int = 1,
            actor: dict | None = None, event_id: str | None = None) -> dict:
    """An envelope of ``source.kind`` on its exchange, as its producer's relay would send it."""
    import uuid

    env = {"event_id": event_id or str(uuid.uuid4()), "type": kind, "source": source, "version": version,
           "occurred_at": datetime.now(timezone.utc).isoformat(), "actor": actor, "subject": subject,
           "correlation_id": "test", "payload": payload}
    return publish_event(config, env)


def records(config, where: str = "1=1") -> list:
    engine = make_engine(config["DB_URIS"]["audit"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(audit_records).where(sa.text(where)).order_by(audit_records.c.seq)).all()
    finally:
        engine.dispose()


def count(config) -> int:
    engine = make_engine(config["DB_URIS"]["audit"])
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(audit_records)).scalar()
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def recorded(config, where: str, n: int = 1, timeout: float = 30) -> list:
    return wait_for(lambda: (lambda rows: rows if len(rows) >= n else None)(records(config, where)),
                    timeout=timeout, message=f"{n} audit record(s) where {where}")
