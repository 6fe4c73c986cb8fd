"""The CLI writes export files only inside the directory it was given
(cli/files.py): names from a server that try to leave it, and links
planted where the file goes, are refused with a typed error; nothing is written."""
from __future__ import annotations

import os

import pytest

from cli.files import export_to, plain_name, write_in
from shared.errors import ValidationFailed

ESCAPING_NAMES = ["../evil.csv", "../../etc/cron.d/x", "/etc/passwd", "sub/dir.csv", "..", ".", "",
                  "a\\..\\b.csv", "C:\\Windows\\x", "bad\x00name"]


@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    out = tmp_path / "out"
    with pytest.raises(ValidationFailed) as err:
        write_in(out, name, "--out", b"data")
    assert "--out" in err.value.fields
    assert not (tmp_path / "evil.csv").exists() and list(tmp_path.rglob("*.csv")) == []


def test_a_plain_name_is_written_inside_the_directory_for_its_owner_only(tmp_path):
    path = write_in(tmp_path / "new" / "dir", "dibao-2027-03-urban-420115-abcd1234.csv", "--out", b"x,y\n")
    assert path.parent == tmp_path / "new" / "dir" and path.read_bytes() == b"x,y\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    assert plain_name("summary.txt", "filename") == "summary.txt"


def test_a_symbolic_link_in_the_directory_is_not_written_through(tmp_path):
    precious = tmp_path / "precious"
    precious.write_text("keep me", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.csv").symlink_to(precious)
    (out / "dangling.csv").symlink_to(tmp_path / "nowhere" / "new.csv")
    for name in ("run.csv", "dangling.csv"):
        with pytest.raises(ValidationFailed) as err:
            write_in(out, name, "--out", b"overwritten")
        assert "symbolic link" in err.value.message
    with pytest.raises(ValidationFailed):
        with export_to(out / "run.csv", "--xlsx") as fh:
            fh.write(b"overwritten")
    assert precious.read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "nowhere").exists()


def test_a_hard_link_to_a_file_elsewhere_is_not_overwritten(tmp_path):
    precious = tmp_path / "precious"
    precious.write_text("keep me", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    os.link(precious, out / "stats.xlsx")
    with pytest.raises(ValidationFailed):
        write_in(out, "stats.xlsx", "--xlsx", b"overwritten")
    assert precious.read_text(encoding="utf-8") == "keep me"


def test_the_directory_given_must_be_a_directory(tmp_path):
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(ValidationFailed):
        write_in(tmp_path / "file", "x.csv", "--out", b"")
