"""What a command record may carry, and what the ingest refuses, without a broker."""
from __future__ import annotations

import json
import uuid

import pytest

from services.audit.ingest import Unrecordable, to_record
from shared.commands import outcome_of, subject_ids
from shared.errors import Conflict, Forbidden, NotFound, ValidationFailed

HID, AID = str(uuid.uuid4()), str(uuid.uuid4())


def test_subject_ids_are_only_uuid_valued_id_keys():
    args = {"data": {"household_id": HID, "resident_id": "420115198001011234", "member_id": "not-a-uuid",
                     "amount_id": "820.00", "members": [{"application_id": AID, "name": "张三"}],
                     "monthly_amount": "820.00"}}
    assert subject_ids(args) == {"household_id": HID, "application_id": AID}


def test_outcomes_name_the_error_kind():
    assert outcome_of(None) == "ok"
    assert outcome_of(ValidationFailed.field("name", "required")) == "validation_failed"
    assert outcome_of(Forbidden("no")) == "forbidden"
    assert outcome_of(NotFound("no")) == "not_found"
    assert outcome_of(Conflict("no")) == "conflict"
    assert outcome_of(RuntimeError("boom")) == "internal_error"


def envelope(**changes) -> dict:
    env = {"event_id": str(uuid.uuid4()), "type": "checkin_recorded", "source": "intake", "version": 1,
           "occurred_at": "2026-11-28T10:00:00+08:00", "actor": None, "subject": {"household_id": HID},
           "correlation_id": "c", "payload": {"community_code": "420115001001", "month": "2026-11",
                                              "checked_in_on": "2026-11-28"}}
    env.update(changes)
    return env


def test_a_record_keeps_the_envelope_with_utc_time_and_indexed_subject():
    record = to_record(json.dumps(envelope()).encode(), "2026-11-28T02:00:01.000000Z")
    assert record["occurred_at"] == "2026-11-28T02:00:00.000000Z"
    assert record["household_id"] == HID and record["case_id"] is None and record["actor_user"] is None


@pytest.mark.parametrize("changes, reason", [
    ({"event_id": "x"}, "event_id"),
    ({"version": 2}, "unknown version 2"),
    ({"type": "checkin_forged"}, "unknown event type"),
    ({"occurred_at": "yesterday"}, "occurred_at"),
    ({"actor": {"user": "u"}}, "actor"),
    ({"payload": {"month": "2026-11"}}, "missing"),
    ({"subject": {"household_id": 5}}, "subject"),
])
def test_the_ingest_refuses_what_it_cannot_record_and_says_why(changes, reason):
    with pytest.raises(Unrecordable, match=reason):
        to_record(json.dumps(envelope(**changes)), "now")
