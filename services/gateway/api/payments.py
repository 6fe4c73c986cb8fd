"""Payments' operator calls: guarantee standards (低保标准), the ledger, payment runs."""
from __future__ import annotations

from contracts.rpc import payments as s
from services.gateway.api import Route

TAG = "payments 资金发放"

ROUTES = [
    Route("GET", "/payments/standards", "payments", "list_standards", "Guarantee standards by area and type", TAG,
          query=s.StandardQuerySchema, query_as="query", response=s.StandardOut, many=True),
    Route("POST", "/payments/standards", "payments", "set_standard",
          "Set a standard; an open-ended one recalculates every case under it (提标/降标)", TAG,
          body=s.SetStandardSchema, status=201),
    Route("GET", "/payments/cases", "payments", "list_cases", "The ledger: the cases payments pays (masked payees)",
          TAG, query=s.ListCasesSchema, query_as="query", response=s.LedgerOut, many=True),
    Route("GET", "/payments/cases/{case_id}", "payments", "get_case", "One case's ledger entry", TAG,
          response=s.LedgerOut),
    Route("GET", "/payments/runs", "payments", "list_runs", "Payment runs", TAG, query=s.ListRunsSchema,
          query_as="query", response=s.RunOut, many=True),
    Route("POST", "/payments/runs", "payments", "create_run",
          "Prepare the run of a period and an area (again before approval: afresh)", TAG,
          body=s.CreateRunSchema, response=s.RunOut, status=201),
    Route("GET", "/payments/runs/{run_id}", "payments", "get_run", "A run with its lines and hold-backs", TAG,
          response=s.RunOut),
    Route("POST", "/payments/runs/{run_id}/approval", "payments", "approve_run",
          "Approve (freeze) a run: by someone other than who prepared it", TAG, response=s.RunOut, status=201),
    Route("GET", "/payments/cases/{case_id}/statement", "payments", "case_statement",
          "One case by month: its benefit periods and what each run paid (masked payees)", TAG,
          response=s.CaseStatementOut),
    Route("POST", "/payments/payees", "payments", "set_payee",
          "Where a case's benefit is paid (the account encrypted at rest, answered masked)", TAG,
          body=s.SetPayeeSchema, response=s.LedgerOut),
]
