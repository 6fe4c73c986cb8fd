"""Intake's events: the payload contract partners rely on (docs/events.md).

No payload carries a resident ID number, an income or an asset value.
"""
from marshmallow import Schema, fields

from shared.events import event_type

SOURCE = "intake"


@event_type(SOURCE, "household_registered", partner=True)
class HouseholdRegistered(Schema):
    """A household was registered at its community (户籍登记). Subject: household_id."""

    community_code = fields.String(required=True, metadata={"doc": "12-digit community/village code"})
    township_code = fields.String(required=True, metadata={"doc": "9-digit township/street code"})
    district_code = fields.String(required=True, metadata={"doc": "6-digit district code"})
    area_type = fields.String(required=True, metadata={"doc": "urban | rural"})
    member_count = fields.Integer(required=True, metadata={"doc": "household size"})


@event_type(SOURCE, "household_updated", partner=True)
class HouseholdUpdated(Schema):
    """A household's members, incomes or assets were changed. Subject: household_id."""

    community_code = fields.String(required=True)
    version = fields.Integer(required=True, metadata={"doc": "the household record's new version"})
    member_count = fields.Integer(required=True)
    changed = fields.List(fields.String(), required=True, metadata={"doc": "which parts changed"})


@event_type(SOURCE, "application_submitted", partner=True)
class ApplicationSubmitted(Schema):
    """An application was accepted at the community (申请受理). Subject: household_id, application_id."""

    community_code = fields.String(required=True)
    township_code = fields.String(required=True)
    area_type = fields.String(required=True)
    accepted_on = fields.Date(required=True, metadata={"doc": "date of acceptance"})
    investigation_deadline = fields.Date(allow_none=True, required=True,
                                         metadata={"doc": "last day to start the home investigation, or null"})
    policy = fields.String(required=True, metadata={"doc": "policy in force when accepted"})
    member_count = fields.Integer(required=True)


@event_type(SOURCE, "investigation_recorded", partner=True)
class InvestigationRecorded(Schema):
    """A home investigation (入户调查) was recorded. Subject: household_id, application_id, investigation_id."""

    community_code = fields.String(required=True)
    investigated_on = fields.Date(required=True)
    investigators = fields.List(fields.Dict(), required=True,
                                metadata={"doc": "[{user, name}] — each accountable for the record"})
    family_signed = fields.Boolean(required=True, metadata={"doc": "family members present signed"})
    started_late = fields.Boolean(required=True, metadata={"doc": "started after the policy's deadline"})
    member_count = fields.Integer(required=True)


@event_type(SOURCE, "document_registered")
class DocumentRegistered(Schema):
    """A document was registered in the household's file (一户一档). Subject: household_id."""

    kind = fields.String(required=True)
    document_date = fields.Date(required=True)
    reference = fields.String(allow_none=True, required=True)


@event_type(SOURCE, "checkin_recorded", partner=True)
class CheckinRecorded(Schema):
    """The household's book was stamped for a month (续保登记). Subject: household_id."""

    community_code = fields.String(required=True)
    month = fields.String(required=True, metadata={"doc": "YYYY-MM"})
    checked_in_on = fields.Date(required=True)


@event_type(SOURCE, "labour_recorded", partner=True)
class LabourRecorded(Schema):
    """A member's public-welfare labour attendance (公益劳动). Subject: household_id, member_id."""

    community_code = fields.String(required=True)
    labour_date = fields.Date(required=True)
    activity = fields.String(required=True)
    attendance = fields.String(required=True, metadata={"doc": "attended | excused | unexcused"})


@event_type(SOURCE, "document_scanned")
class DocumentScanned(Schema):
    """A scan (扫描件) of a filed document was stored, sealed. Subject: household_id, document_id, scan_id."""

    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    community_code = fields.String(required=True)


@event_type(SOURCE, "file_viewed")
class FileViewed(Schema):
    """Someone read a household's file (reads are audited). Subject: household_id."""

    purpose = fields.String(required=True, metadata={"doc": "view | lookup | export | scan"})
    community_code = fields.String(required=True)


@event_type(SOURCE, "member_died", partner=True)
class MemberDied(Schema):
    """A member's death was recorded (a fact the review acts on). Subject: household_id, member_id."""

    community_code = fields.String(required=True)
    died_on = fields.Date(required=True)
    living_members = fields.Integer(required=True, metadata={"doc": "members still living"})
