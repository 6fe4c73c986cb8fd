"""Intake's operator calls: households (户籍), applications (申请受理), home
investigations (入户调查), the household file (一户一档), check-ins and labour."""
from __future__ import annotations

from contracts.rpc import intake as s
from services.gateway.api import Route

TAG = "intake 受理与入户调查"

ROUTES = [
    Route("POST", "/households", "intake", "register_household", "Register a household (户籍登记)", TAG,
          body=s.HouseholdSchema, response=s.HouseholdRegisteredOut, status=201),
    Route("GET", "/households/{household_id}", "intake", "get_household",
          "A household's whole file (the read is recorded: file_viewed)", TAG, response=s.HouseholdOut),
    Route("PUT", "/households/{household_id}", "intake", "update_household",
          "Change a household's members, incomes, assets", TAG, body=s.HouseholdSchema,
          response=s.HouseholdUpdatedOut),
    Route("POST", "/households/lookup", "intake", "find_household",
          "Find a household by a member's resident ID number (in the body, never the URL)", TAG,
          body=s.LookupSchema, response=s.HouseholdOut),
    Route("GET", "/households/{household_id}/file-report", "intake", "file_report",
          "一户一档: required, present and missing documents", TAG),
    Route("POST", "/applications", "intake", "submit_application", "Accept an application (申请受理)", TAG,
          body=s.ApplicationSchema, response=s.ApplicationOut, status=201),
    Route("GET", "/applications", "intake", "list_applications", "Applications within your unit", TAG,
          query=s.ListApplicationsSchema, response=s.ApplicationOut, many=True),
    Route("GET", "/applications/{application_id}", "intake", "get_application",
          "An application with its home investigations", TAG, response=s.ApplicationOut),
    Route("POST", "/investigations", "intake", "record_investigation",
          "Record a home investigation (入户调查表)", TAG, body=s.InvestigationSchema,
          response=s.InvestigationOut, status=201),
    Route("POST", "/documents", "intake", "register_document", "File a document in the household file", TAG,
          body=s.DocumentSchema, response=s.DocumentOut, status=201),
    Route("POST", "/checkins", "intake", "record_checkin", "The month's check-in (续保登记)", TAG,
          body=s.CheckInSchema, status=201),
    Route("POST", "/labour", "intake", "record_labour", "Public-welfare labour attendance", TAG,
          body=s.LabourSchema, status=201),
    Route("POST", "/deaths", "intake", "record_death", "A member's death, as a fact", TAG, body=s.DeathSchema,
          status=201),
    Route("GET", "/staff", "intake", "list_staff", "Who works in a unit, in which role (intake's registry)", TAG,
          query=s.UnitSchema, many=True),
    Route("GET", "/community/sheet", "intake", "community_sheet",
          "月度签到 / 公益劳动: a unit's households with a case paid in the month, their check-in and labour", TAG,
          query=s.SheetSchema),
]
