"""Known operational conditions (a missing font, a full disk, a refused
permission) as typed problems, never an ``InternalError``.

:func:`classify` names the condition and what an operator does about it;
:class:`OperationalProblem` is the typed RPC error for a call that could not
write a file it needed to (``shared.rpc`` maps a file-system ``OSError`` to it).
Notify keeps the problems of the files it writes in the background (notice
PDFs, the file channel's messages) as a table its ``ping`` (``dibao health
notify``) shows, and retries them on its timer.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass

from nameko.exceptions import deserialize_to_instance

from shared.errors import DibaoError


@deserialize_to_instance
class OperationalProblem(DibaoError):
    """A known operational condition stopped the call (details: problem, fix); nothing was changed."""

    code = "operational_problem"


class FontMissing(OSError):
    """The CJK TrueType font (NOTICE_FONT) is not there or cannot be read."""


@dataclass(frozen=True)
class Problem:
    code: str     # font_missing | disk_full | permission | io_error
    detail: str   # what happened and what to fix, in one line


_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


def classify(exc: BaseException) -> Problem | None:
    """The known condition behind ``exc``, or None (a bug: let it be an InternalError)."""
    if isinstance(exc, FontMissing):
        return Problem("font_missing", str(exc))
    if not isinstance(exc, OSError) or isinstance(exc, ConnectionError):
        return None
    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in _DISK_FULL:
        return Problem("disk_full", f"no space left on the device{where}: free space or move DATA_DIR")
    if exc.errno in _PERMISSION:
        return Problem("permission", f"permission denied{where}: let the service's user write there "
                                     f"(or set DATA_DIR to a writable folder)")
    if exc.filename:
        return Problem("io_error", f"{exc.strerror or exc}{where}")
    return None
