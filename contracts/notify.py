"""Notify's events: public notices and objections from the public."""
from marshmallow import Schema, fields

from shared.events import event_type

SOURCE = "notify"


@event_type(SOURCE, "notice_posted", partner=True)
class NoticePosted(Schema):
    """A public notice went up on a board. Subject: notice_id, household_id, application_id."""

    stage = fields.String(required=True)
    unit_code = fields.String(required=True)
    posted_on = fields.Date(required=True)
    closes_on = fields.Date(required=True, metadata={"doc": "last day of the posting period"})


@event_type(SOURCE, "notice_closed", partner=True)
class NoticeClosed(Schema):
    """A notice's posting period ended. Subject: notice_id, household_id, application_id."""

    stage = fields.String(required=True)
    unit_code = fields.String(required=True)
    closed_on = fields.Date(required=True)
    objections = fields.Integer(required=True, metadata={"doc": "objections filed against it"})


@event_type(SOURCE, "objection_filed", partner=True)
class ObjectionFiled(Schema):
    """Someone objected to a notice (群众异议). Subject: notice_id, objection_id, household_id, application_id."""

    stage = fields.String(required=True)
    unit_code = fields.String(required=True)
    filed_on = fields.Date(required=True)
    anonymous = fields.Boolean(required=True)
