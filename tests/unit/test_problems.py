"""Known operational conditions are typed problems, never InternalError."""
from __future__ import annotations

import errno
from datetime import date
from types import SimpleNamespace

from services.notify.rendering import Board
from shared.problems import FontMissing, OperationalProblem, classify
from shared.rpc import DibaoRpc, InternalError


def test_classify_names_the_condition_and_what_to_fix():
    assert classify(FontMissing("no CJK font at /x (NOTICE_FONT)")).code == "font_missing"
    full = classify(OSError(errno.ENOSPC, "No space left on device", "/var/dibao/notices/x.pdf"))
    assert full.code == "disk_full" and "/var/dibao/notices/x.pdf" in full.detail and "DATA_DIR" in full.detail
    assert classify(PermissionError(errno.EACCES, "Permission denied", "/var/x")).code == "permission"
    assert classify(OSError(errno.ENOSPC, "No space left on device")).code == "disk_full"
    assert classify(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None   # not a file: a bug or the bus
    assert classify(ValueError("bug")) is None


def test_an_rpc_that_cannot_write_a_file_answers_a_typed_problem_not_internal_error():
    entry = DibaoRpc.__new__(DibaoRpc)
    ctx = SimpleNamespace(call_id="notify.render_board.1", service_name="notify")
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/notices/420115001001.pdf")
    kind, error, _ = entry._public_error(ctx, (OSError, exc, None))
    assert kind is OperationalProblem and error.details == {"problem": "disk_full"}
    kind, error, _ = entry._public_error(ctx, (KeyError, KeyError("x"), None))
    assert kind is InternalError


def test_a_board_without_its_font_still_gets_its_html_page(tmp_path):
    board = Board(tmp_path / "notices", str(tmp_path / "missing.ttc"))
    (tmp_path / "notices").mkdir()
    (tmp_path / "notices" / "420115001001.pdf").write_bytes(b"%PDF stale")
    result = board.render("420115001001", "东城社区", [], date(2027, 2, 4))
    assert result["html"] and (tmp_path / "notices" / "420115001001.html").is_file()
    assert result["pdf"] is None and not (tmp_path / "notices" / "420115001001.pdf").exists()  # no stale sheet
    [problem] = result["problems"]
    assert problem["kind"] == "board_pdf" and problem["code"] == "font_missing"
    assert "fonts-wqy-zenhei" in problem["detail"]
