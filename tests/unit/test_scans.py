"""Scans of filed documents (扫描件): what intake accepts, and how it keeps them
(sealed on disk, bound to their record: services/intake/scans.py)."""
from __future__ import annotations

import os

import pytest

from services.intake.rules import scan_is_an_accepted_file
from services.intake.scans import ScanFiles
from shared.crypto import FieldCipher, configure
from shared.errors import ValidationFailed

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
PDF = b"%PDF-1.7\n%..." + b"x" * 40


@pytest.fixture
def files(tmp_path):
    configure(FieldCipher(os.urandom(32)))
    return ScanFiles(tmp_path / "scans", max_bytes=1024)


def test_a_scan_is_a_pdf_jpeg_or_png_by_its_bytes_and_not_too_large():
    assert scan_is_an_accepted_file("image/png", PNG, 1024) == "image/png"
    assert scan_is_an_accepted_file("application/pdf; charset=binary", PDF, 1024) == "application/pdf"
    for content_type, content, field in [("image/png", b"<script>alert(1)</script>", "content"),   # labelled, is not
                                         ("image/png", PDF, "content"),
                                         ("text/html", b"<html>", "content_type"),
                                         ("image/svg+xml", b"<svg/>", "content_type"),
                                         ("image/png", b"", "content"),
                                         ("image/png", PNG + b"x" * 1024, "content")]:
        with pytest.raises(ValidationFailed) as refused:
            scan_is_an_accepted_file(content_type, content, 1024)
        assert field in refused.value.fields


def test_a_scan_is_sealed_on_disk_and_opens_only_as_its_own_record(files):
    files.write("0f3a-scan-one", PNG)
    files.write("77aa-scan-two", PDF)
    stored = files.path_of("0f3a-scan-one").read_bytes()
    assert b"PNG" not in stored and len(stored) > len(PNG)          # encrypted at rest
    assert files.read("0f3a-scan-one") == PNG
    # one record's file put in place of another's does not open
    files.path_of("77aa-scan-two").write_bytes(stored)
    with pytest.raises(ValueError):
        files.read("77aa-scan-two")
    tampered = bytearray(stored)
    tampered[-1] ^= 1
    files.path_of("0f3a-scan-one").write_bytes(bytes(tampered))
    with pytest.raises(ValueError):
        files.read("0f3a-scan-one")


def test_a_scan_id_cannot_walk_out_of_the_scan_directory(files):
    for bad in ("../../etc/passwd", "a/b", ".hidden", ""):
        with pytest.raises(ValueError):
            files.path_of(bad)
