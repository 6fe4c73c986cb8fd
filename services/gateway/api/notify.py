"""Notify's operator calls: the notices (张榜公示) of a unit and their state,
the objections (群众异议) recorded at the office, the officers' reminders
(复核提醒), and the board's files made again on demand (its index page and
printable sheet: the answer names each file that could not be written).
The public's own door — the board, an online objection — is the gateway's
public pages (no login), not this API."""
from __future__ import annotations

from contracts.rpc import notify as s
from services.gateway.api import Route

TAG = "notify 公示与异议"

ROUTES = [
    Route("GET", "/notify/notices", "notify", "list_notices",
          "The notices about households within a unit (posted ones unless active_only=false)", TAG,
          query=s.ListNoticesSchema, response=s.NoticeOut, many=True),
    Route("GET", "/notify/notices/{notice_id}", "notify", "get_notice",
          "A notice: stage, posting period, status (posted / closed)", TAG, response=s.NoticeOut),
    Route("GET", "/notify/notices/{notice_id}/objections", "notify", "list_objections",
          "The objections to a notice", TAG, response=s.ObjectionOut, many=True),
    Route("POST", "/notify/objections", "notify", "file_objection",
          "Record an objection given at the office (anonymous allowed)", TAG, body=s.ObjectionSchema,
          response=s.ObjectionOut, status=201),
    Route("GET", "/notify/reminders", "notify", "list_reminders", "复核提醒: the re-review reminders of a unit", TAG,
          query=s.UnitSchema, response=s.ReminderOut, many=True),
    Route("POST", "/notify/board-renderings", "notify", "render_board",
          "Write a unit's board again (index page and printable sheet); `problems` names what could not be "
          "written (retried on the timer)", TAG, body=s.UnitSchema, body_as=None),
    Route("POST", "/notify/notice-closings", "notify", "close_due_notices",
          "Close the notices whose posting period ended before as_of (default today)", TAG,
          body=s.CloseDueSchema, body_as=None, many=True),
]
