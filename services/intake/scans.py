"""Where scans of filed documents (扫描件) are kept: sealed files on disk.

Each scan is one file ``<SCAN_DIR>/<first two of its id>/<id>.sealed``
(``SCAN_DIR`` empty: ``<DATA_DIR>/scans``), its bytes AES-GCM sealed with the
data key (``shared.crypto.FieldCipher.seal_bytes``, bound to the scan's id:
one scan's file put in place of another's does not open). The directory is
the service's own, outside any web root: the gateway serves a scan only
through intake's ``get_scan``, which checks the reader's jurisdiction.
"""
from __future__ import annotations

import os
from pathlib import Path

from nameko.extensions import DependencyProvider

from shared.config import data_dir
from shared.crypto import get_cipher

DEFAULT_MAX_BYTES = 1024 * 1024


class ScanFiles:
    def __init__(self, root: Path, max_bytes: int):
        self.root = root
        self.max_bytes = max_bytes

    def path_of(self, scan_id: str) -> Path:
        if not scan_id or "/" in scan_id or "\\" in scan_id or scan_id.startswith("."):
            raise ValueError("not a scan id")
        return self.root / scan_id[:2] / f"{scan_id}.sealed"

    def write(self, scan_id: str, content: bytes) -> None:
        """Sealed, written whole or not at all (a temporary file renamed into place)."""
        path = self.path_of(scan_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".part")
        with open(temporary, "wb") as out:
            out.write(get_cipher("intake").seal_bytes(content, scan_id))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)

    def read(self, scan_id: str) -> bytes:
        return get_cipher("intake").open_bytes(self.path_of(scan_id).read_bytes(), scan_id)

    def remove(self, scan_id: str) -> None:
        self.path_of(scan_id).unlink(missing_ok=True)


class ScanStore(DependencyProvider):
    """The service's scan directory (config ``SCAN_DIR``, ``SCAN_MAX_BYTES``)."""

    def setup(self):
        config = self.container.config
        root = Path(config.get("SCAN_DIR") or (data_dir(config) / "scans"))
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.files = ScanFiles(root, int(config.get("SCAN_MAX_BYTES") or DEFAULT_MAX_BYTES))

    def get_dependency(self, worker_ctx):
        return self.files
