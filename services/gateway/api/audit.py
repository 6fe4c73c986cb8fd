"""The audit's queries: responsibility tracing (责任追究), statistics, the scorecard."""
from __future__ import annotations

from contracts.rpc import audit as s
from services.gateway.api import Route

TAG = "audit 监督审计"

ROUTES = [
    Route("GET", "/audit/trace", "audit", "trace",
          "Who did what, when, with what outcome: for one household, application, case, operator or unit", TAG,
          query=s.TraceSchema, query_as="data", many=True),
    Route("GET", "/audit/cases/{case_id}/who-let-them-in", "audit", "who_let_them_in",
          "Everyone who took part in the entry of a case", TAG),
    Route("GET", "/audit/households/{household_id}/readers", "audit", "file_readers",
          "Who read the household's file", TAG, many=True),
    Route("GET", "/audit/statistics", "audit", "statistics", "The bureau's headline statistics for a date", TAG,
          query=s.DateSchema),
    Route("GET", "/audit/scorecard", "audit", "scorecard", "考评: the supervision scorecard for a date", TAG,
          query=s.StatisticsSchema),
]
