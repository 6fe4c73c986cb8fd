"""Review's operator calls: the entry review's steps (进口), the statutory
clock, the worklist, cases and dynamic management (动态管理)."""
from __future__ import annotations

from contracts.rpc import review as s
from services.gateway.api import Route

TAG = "review 审核审批"
DYNAMIC = "review 动态管理"

ROUTES = [
    Route("GET", "/applications/{application_id}/review", "review", "get_application",
          "An application's review status: step, deadlines, objections, decision, case", TAG,
          response=s.ReviewFileOut),
    Route("GET", "/review/worklist", "review", "worklist",
          "待办: open applications waiting at your level in your unit, late ones first", TAG,
          query=s.WorklistSchema, response=s.WorkItemOut, many=True),
    Route("GET", "/review/files", "review", "files",
          "The applications in the review within your unit, of one status if given, latest first", TAG,
          query=s.FilesSchema, response=s.ReviewFileOut, many=True),
    Route("GET", "/review/overdue", "review", "overdue",
          "The statutory clock: applications past a step's or the whole process's deadline", TAG,
          query=s.OverdueSchema, response=s.ReviewFileOut, many=True),
    Route("POST", "/review/evaluations", "review", "record_evaluation",
          "社区民主评议: the meeting, its signed participants, votes and decision", TAG,
          body=s.EvaluationSchema, response=s.ReviewFileOut, status=201),
    Route("POST", "/review/evaluation-skips", "review", "skip_evaluation",
          "Skip the evaluation where the policy allows it (no objection)", TAG, body=s.SkipSchema,
          response=s.ReviewFileOut, status=201),
    Route("POST", "/review/township-reviews", "review", "record_township_review",
          "乡镇街评审委员会 (each member's opinion) or the initial opinion", TAG, body=s.TownshipReviewSchema,
          response=s.ReviewFileOut, status=201),
    Route("POST", "/review/joint-review-signatures", "review", "sign_joint_review",
          "会审: one of the three signatures; the third fixes the benefit and approves", TAG,
          body=s.JointReviewSchema, response=s.ReviewFileOut, status=201),
    Route("POST", "/review/rejections", "review", "reject_application", "Reject an application, with the reason",
          TAG, body=s.RejectSchema, response=s.ReviewFileOut, status=201),
    Route("GET", "/cases/{case_id}", "review", "get_case", "A case: category, benefit, re-review", DYNAMIC,
          response=s.CaseOut),
    Route("GET", "/review/rereviews", "review", "overdue_rereviews", "Cases past their re-review date", DYNAMIC,
          query=s.UnitAsOfSchema, response=s.CaseOut, many=True),
    Route("GET", "/review/proposals", "review", "list_proposals", "Proposals to adjust or cancel cases", DYNAMIC,
          query=s.ListProposalsSchema, response=s.ProposalOut, many=True),
    Route("POST", "/review/proposals", "review", "propose", "Propose to adjust or cancel a case", DYNAMIC,
          body=s.ProposeSchema, response=s.ProposalOut, status=201),
    Route("POST", "/review/proposal-approvals", "review", "approve_proposal",
          "Approve a proposal (the people the policy names, in its order)", DYNAMIC, body=s.ApproveSchema,
          response=s.ProposalOut, status=201),
    Route("POST", "/review/proposal-rejections", "review", "reject_proposal", "Reject a proposal, with the reason",
          DYNAMIC, body=s.RejectProposalSchema, response=s.ProposalOut, status=201),
    Route("POST", "/review/category-changes", "review", "change_category",
          "Change a case's category (re-review cadence), with the reason", DYNAMIC,
          body=s.CategoryChangeSchema, response=s.CaseOut, status=201),
]
