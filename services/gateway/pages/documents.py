"""一户一档: the household file's documents, their scans, and its completeness.

The officer files a document (``intake.register_document``: kind, title,
date) with its scan uploaded in the same form (``intake.attach_scan``: a
PDF, JPEG or PNG up to intake's ``SCAN_MAX_BYTES``, checked by its bytes,
sealed with the data key in intake's scan directory — never under the web
root). A scan is read back only through ``intake.get_scan``, which checks
the reader's jurisdiction and records the read; it is sent as an
attachment. The completeness is intake's ``file_report``: the documents the
file must hold at the stage the household reached, and which are missing.
"""
from __future__ import annotations

import base64

from werkzeug.wrappers import Response

from services.gateway.pages import _forms as forms
from services.gateway.pages.base import Area
from services.gateway.pages.households import record_refused
from shared.errors import Forbidden, NotFound, ValidationFailed
from shared.identity import Role

area = Area("documents")

FILERS = ("community_officer", "township_officer", "district_officer")
EXTENSION = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
#: the browser's upload is read at most this far (intake has the last word: SCAN_MAX_BYTES)
UPLOAD_LIMIT = 1024 * 1024 + 1


def show(ctx, household_id, values=None, errors=None, alert="", notice="", status=200):
    try:
        household = ctx.calls.intake.get_household(household_id)
        report = ctx.calls.intake.file_report(household_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    return ctx.render("documents/file.html", status=status, household=household, report=report,
                      values=values or {"document_date": ctx.today().isoformat()}, errors=errors or {},
                      alert=alert, notice=notice, choices=forms.LABELS,
                      may_file=bool(ctx.actor.roles & {Role(r) for r in FILERS}))


@area.page("/households/<uuid:household_id>/documents")
def household_file(ctx, household_id):
    """The file: completeness, documents with their scans, the form to file one."""
    return show(ctx, household_id, notice="已归档" if ctx.request.args.get("filed") else "")


@area.page("/households/<uuid:household_id>/documents", methods=("POST",), roles=FILERS)
def file_document(ctx, household_id):
    """File a document, and its scan when one is uploaded."""
    form = ctx.form
    values = {k: forms.text(form, k) for k in ("kind", "title", "document_date", "reference")}
    upload = ctx.request.files.get("scan")
    content = upload.stream.read(UPLOAD_LIMIT) if upload and upload.filename else b""
    try:
        if upload and upload.filename and not content:
            raise ValidationFailed.field("scan", "the file is empty")
        document = ctx.calls.intake.register_document({
            "household_id": household_id, "kind": values["kind"], "title": values["title"],
            "document_date": values["document_date"], "reference": values["reference"] or None})
    except Exception as exc:
        if not forms.refused(exc):
            raise
        return show(ctx, household_id, values, forms.field_errors(exc), forms.refusal_text(exc), status=400)
    if content:
        try:
            ctx.calls.intake.attach_scan({"document_id": document["id"], "content_type": upload.mimetype or "",
                                          "content": base64.b64encode(content).decode("ascii")})
        except Exception as exc:
            if not forms.refused(exc):
                raise
            errors = {"scan": sum(forms.field_errors(exc).values(), []) or [forms.refusal_text(exc)]}
            return show(ctx, household_id, values, errors, "材料已登记，但扫描件未能保存：仅接受 1 MB 以内的 "
                                                            "PDF、JPEG、PNG 文件，可在下方重新上传。", status=400)
    return ctx.redirect(f"/households/{household_id}/documents?filed=1")


@area.page("/documents/<uuid:document_id>/scans", methods=("POST",), roles=FILERS)
def add_scan(ctx, document_id):
    """A further scan of a document already filed."""
    household_id = forms.text(ctx.form, "household_id")
    upload = ctx.request.files.get("scan")
    content = upload.stream.read(UPLOAD_LIMIT) if upload and upload.filename else b""
    try:
        ctx.calls.intake.attach_scan({"document_id": document_id, "content_type": (upload.mimetype if upload else ""),
                                      "content": base64.b64encode(content).decode("ascii")})
    except (NotFound, Forbidden):
        return record_refused(ctx)
    except Exception as exc:
        if not forms.refused(exc) or not household_id:
            raise
        return show(ctx, household_id, None, {f"scan-{document_id}": sum(forms.field_errors(exc).values(), [])},
                    forms.refusal_text(exc), status=400)
    return ctx.redirect(f"/households/{household_id}/documents?filed=1" if household_id else "/")


@area.page("/scans/<uuid:scan_id>")
def scan(ctx, scan_id):
    """A scan's file, as an attachment (never shown inline: the browser does not run what it is sent)."""
    try:
        found = ctx.calls.intake.get_scan(scan_id)
    except (NotFound, Forbidden):
        return record_refused(ctx)
    content_type = found["content_type"] if found["content_type"] in EXTENSION else "application/octet-stream"
    response = Response(base64.b64decode(found["content"]), mimetype=content_type)
    response.headers["Content-Disposition"] = (f'attachment; filename="scan-{found["id"]}.'
                                               f'{EXTENSION.get(content_type, "bin")}"')
    return ctx.finish(response)
