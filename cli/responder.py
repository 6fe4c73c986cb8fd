"""The reference responder: what a partner bureau runs to try the verification
contract (docs/verification.md) — a plain nameko service that needs nothing
of Dibao's but the partner URI ``dibao broker partner-add NAME --verification``
printed, and answers from a CSV file.

The CSV has a header ``resident_id,kind,description,amount,as_of``: one row
per finding (a person with two cars has two rows); ``kind`` ``cannot_answer``
answers "cannot answer" with ``description`` as the reason; a person not in
the file has "no record". Requests and reminders arrive on the queue
``verification.requests`` in the bureau's vhost; answers go to the exchange
``verification.answers`` there with ``user_id`` = the bureau's broker user
(the user name in the URI), which RabbitMQ checks.
"""
from __future__ import annotations

import csv
import logging
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kombu import Exchange, Queue
from nameko.messaging import Publisher, consume

log = logging.getLogger("dibao.partner")

REQUESTS = Queue("verification.requests", exchange=Exchange("verification.requests", type="topic", durable=True),
                 routing_key="#", durable=True)
ANSWERS = Exchange("verification.answers", type="topic", durable=True)

#: what the responder has answered and been told since it started (tests, the demo read it)
SEEN: dict[str, list] = {"requests": [], "answers": [], "refusals": []}


def load_findings(path: str | Path) -> dict[str, list[dict]]:
    """resident_id -> its rows (kind, description, amount or None, as_of)."""
    out: dict[str, list[dict]] = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            rid = (row.get("resident_id") or "").strip().upper()
            if not rid:
                continue
            amount = (row.get("amount") or "").strip()
            out.setdefault(rid, []).append({"kind": row["kind"].strip(), "description": row["description"].strip(),
                                            "amount": amount or None, "as_of": row["as_of"].strip()})
    return out


def answer_for(rows: list[dict] | None) -> dict:
    """One member's answer from its rows: found, no_record or cannot_answer."""
    if not rows:
        return {"outcome": "no_record", "findings": []}
    cannot = [r for r in rows if r["kind"] == "cannot_answer"]
    if cannot:
        return {"outcome": "cannot_answer", "reason": cannot[0]["description"], "findings": []}
    return {"outcome": "found", "findings": rows}


def answer_message(request: dict, findings: dict[str, list[dict]]) -> dict:
    return {
        "type": "verification_answer", "version": 1, "message_id": str(uuid.uuid4()),
        "request_id": request["request_id"], "bureau": request["bureau"],
        "answered_at": datetime.now(timezone.utc).isoformat(),
        "members": [dict(answer_for(findings.get(m["resident_id"].upper())), member_ref=m["member_ref"])
                    for m in request["members"]],
    }


def responder(bureau: str, data_file: str | Path, partner_uri: str) -> type:
    """The nameko service class answering as ``bureau`` from ``data_file``."""
    findings = load_findings(data_file)
    user = unquote(urlsplit(partner_uri).username or "")

    class Responder:
        name = f"{bureau}_responder"
        publish = Publisher(exchange=ANSWERS)

        @consume(REQUESTS)
        def on_message(self, message):
            kind = message.get("type") if isinstance(message, dict) else None
            if kind in ("verification_request", "verification_reminder"):
                SEEN["requests"].append(message)
                answer = answer_message(message, findings)
                SEEN["answers"].append(answer)
                self.publish(answer, routing_key="verification_answer", user_id=user or None,
                             message_id=answer["message_id"])
                log.info("%s answered request %s (%d members)", bureau, message["request_id"],
                         len(message["members"]))
            elif kind == "answer_refused":
                SEEN["refusals"].append(message)
                log.warning("%s: message %s refused: %s (%s)", bureau, message.get("refused_message_id"),
                            message.get("reason"), message.get("detail"))

    Responder.__name__ = f"{bureau.title().replace('_', '')}Responder"
    return Responder
