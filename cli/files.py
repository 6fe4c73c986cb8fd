"""Where the CLI writes export files: only inside the directory it was given.

One rule for every command that writes a file (bank files and their
summary, ``stats --xlsx``, ``audit checkpoint --out``, the import's error
report, ``import sample``):

- a command given a directory (``payments run export --out DIR``) writes
  files whose *names* come from the server or from the command: each must be
  a plain file name — no ``/`` or ``\\``, not ``.`` or ``..``, not absolute,
  no NUL — so it lands in DIR and nowhere else;
- a command given a file (``--xlsx FILE``) writes exactly that file, in the
  directory its path names;
- never through a symbolic link: a link at the file's place (which could
  point anywhere, e.g. planted in a shared export folder) is refused, and the
  file is opened with ``O_NOFOLLOW`` so a link put there meanwhile is refused
  too. A new file is made readable by its owner only (exports hold personal
  data: names, accounts).

A refusal is a typed error (``ValidationFailed`` naming the option); nothing
is written.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO, Iterator

from shared.errors import ValidationFailed

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def plain_name(name: str, option: str) -> str:
    """``name`` if it is a plain file name (one path component), else ValidationFailed."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "\x00" in name
            or PurePosixPath(name).name != name or PureWindowsPath(name).name != name):
        raise ValidationFailed.field(option, f"{name!r} is not a plain file name: files are written only "
                                             "inside the directory given")
    return name


def target_in(directory: Path, name: str, option: str) -> Path:
    """The path of ``name`` inside ``directory`` (created if missing), refused
    when ``name`` is not a plain name or a symbolic link stands in its place."""
    plain_name(name, option)
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValidationFailed.field(option, f"{directory} is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if target.is_symlink():
        raise ValidationFailed.field(option, f"{target} is a symbolic link: not written through")
    if target.exists() and (not target.is_file() or target.stat().st_nlink > 1):
        raise ValidationFailed.field(option, f"{target} is not a plain file of its own (a hard link?): not written")
    if target.resolve().parent != directory.resolve():   # belt and braces: never outside
        raise ValidationFailed.field(option, f"{target} lies outside {directory}")
    return target


@contextmanager
def export_file(directory: Path, name: str, option: str, binary: bool = True,
                encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO]:
    """Open ``name`` inside ``directory`` for writing (see the module's rule)."""
    target = target_in(directory, name, option)
    try:
        fd = os.open(target, _FLAGS, 0o600)
    except OSError as exc:
        if target.is_symlink():   # a link put there since the check: O_NOFOLLOW refused it
            raise ValidationFailed.field(option, f"{target} is a symbolic link: not written through") from None
        raise ValidationFailed.field(option, f"cannot write {target}: {exc.strerror}") from None
    mode = "wb" if binary else "w"
    with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": newline})) as fh:
        yield fh


@contextmanager
def export_to(path: Path, option: str, binary: bool = True, encoding: str = "utf-8",
              newline: str | None = None) -> Iterator[IO]:
    """Open the file a command was given (``--xlsx FILE``) for writing, in the
    directory its path names, never through a symbolic link."""
    path = Path(path)
    with export_file(path.parent, path.name, option, binary, encoding, newline) as fh:
        yield fh


def write_in(directory: Path, name: str, option: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` as ``name`` inside ``directory``; the path written."""
    binary = isinstance(data, bytes)
    with export_file(directory, name, option, binary=binary, encoding=encoding) as fh:
        fh.write(data)
    return Path(directory) / name
