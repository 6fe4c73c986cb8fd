"""Review's appeals (复核): file one for the household, decide it, list and read them."""
from __future__ import annotations

from contracts.rpc import review as s
from services.gateway.api import Route

TAG = "review 复核"

ROUTES = [
    Route("GET", "/appeals", "review", "list_appeals",
          "复核: the appeals within your unit (of one status), the earliest due first, late ones marked", TAG,
          query=s.ListAppealsSchema, response=s.AppealItemOut, many=True),
    Route("POST", "/appeals", "review", "file_appeal",
          "File an appeal for the household: its application's rejection, cancellation or latest benefit change, "
          "within the policy's period", TAG, body=s.AppealFileSchema, response=s.AppealOut, status=201),
    Route("GET", "/appeals/{appeal_id}", "review", "get_appeal",
          "One appeal: the decision under appeal, who took part in it, the grounds, the deadline, the decision", TAG,
          response=s.AppealOut),
    Route("POST", "/appeal-decisions", "review", "decide_appeal",
          "Decide an appeal (upheld reopens, restores or reverts; dismissed leaves it), with the reason, "
          "by someone who took no part in the decision under appeal", TAG, body=s.AppealDecideSchema,
          response=s.AppealOut, status=201),
]
