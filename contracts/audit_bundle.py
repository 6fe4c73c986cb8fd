"""The audit bundle: the record, its checkpoints and public keys in one file, verified offline.

``dibao audit export --out FILE`` writes it from the audit database;
``dibao audit verify --bundle FILE --checkpoint FILE --public-key FILE``
checks it with this module and :mod:`contracts.audit_checkpoints` alone —
no database, no service code.

A bundle is a zip file (format ``dibao-audit-bundle``, version 1) of three
members:

- ``manifest.json``: ``{"format", "version", "exported_at", "records",
  "head_seq", "head_hash", "checkpoints", "public_keys": {key id: base64
  key}, "chain": "sha256" | "sm3"}`` — what the exporter saw; a verifier
  trusts none of it (the public key it brings is the one that counts; the
  chain's hash only says how to read the records — a checkpoint signed with
  the other profile's algorithm then vouches for nothing);
- ``records.jsonl``: every record in ``seq`` order, one JSON object a line,
  with the columns of :data:`contracts.audit_chain.CHAINED` and ``seq``,
  ``prev_hash``, ``hash``;
- ``checkpoints.jsonl``: every checkpoint the database kept, in order, one
  a line, each exactly the payload of its ``audit.checkpoint_signed`` event.

The records carry personal data (names, the payloads as recorded): a bundle
is for the auditors and supervisors entitled to the record, not for
partners — who keep the checkpoints and verify a bundle they are shown.
"""
from __future__ import annotations

import io
import json
import zipfile
from contextlib import closing
from datetime import datetime, timezone
from typing import IO, Iterator, Mapping

from contracts.audit_chain import CHAINED, read_records
from contracts.audit_checkpoints import Report, public_keys, stored, verify_log
from contracts.audit_checkpoints import audit_checkpoints as checkpoint_table
from shared import profiles
from shared.profiles import CryptoProfile

FORMAT = "dibao-audit-bundle"
VERSION = 1
RECORD_KEYS = ("seq",) + CHAINED + ("prev_hash", "hash")


class BundleError(ValueError):
    """The file is not a bundle this version reads."""


def _line(data: Mapping) -> bytes:
    return (json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")


def write_bundle(engine, out: IO[bytes], profile: CryptoProfile | None = None) -> dict:
    """Write the audit database's bundle to ``out`` (a binary file); the manifest."""
    import sqlalchemy as sa

    profile = profile or profiles.current()
    records, head_seq, head_hash = 0, 0, None
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        with bundle.open("records.jsonl", "w", force_zip64=True) as member, closing(read_records(engine)) as rows:
            for row in rows:
                member.write(_line({k: row[k] for k in RECORD_KEYS}))
                records, head_seq, head_hash = records + 1, row["seq"], row["hash"]
        checkpoints = stored(engine)
        with bundle.open("checkpoints.jsonl", "w") as member:
            for cp in checkpoints:
                member.write(_line(cp))
        with engine.connect() as conn:
            keys = dict(conn.execute(sa.select(checkpoint_table.c.key_id, checkpoint_table.c.public_key)
                                     .distinct()).all())
        manifest = {"format": FORMAT, "version": VERSION,
                    "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "records": records, "head_seq": head_seq, "head_hash": head_hash,
                    "checkpoints": len(checkpoints), "public_keys": keys, "chain": profile.chain_name}
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


class Bundle:
    """An opened bundle: its manifest, its records (streamed) and checkpoints."""

    def __init__(self, path):
        try:
            self.zip = zipfile.ZipFile(path)
            self.manifest = json.loads(self.zip.read("manifest.json"))
        except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise BundleError(f"not an audit bundle: {exc}") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise BundleError("not an audit bundle: its manifest names another format")
        if self.manifest.get("version") != VERSION:
            raise BundleError(f"bundle version {self.manifest.get('version')}: this verifier reads version {VERSION}")

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _lines(self, name: str) -> Iterator[dict]:
        try:
            member = self.zip.open(name)
        except KeyError:
            raise BundleError(f"the bundle has no {name}") from None
        with member, io.TextIOWrapper(member, encoding="utf-8") as text:
            for n, line in enumerate(text, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise BundleError(f"{name} line {n} is not JSON") from None
                if not isinstance(item, dict):
                    raise BundleError(f"{name} line {n} is not an object")
                yield item

    def records(self) -> Iterator[dict]:
        for n, record in enumerate(self._lines("records.jsonl"), 1):
            missing = [k for k in RECORD_KEYS if k not in record]
            if missing or not isinstance(record["seq"], int) or not isinstance(record["hash"], str):
                raise BundleError(f"records.jsonl line {n} is not a record (missing {', '.join(missing) or 'types'})")
            yield record

    def checkpoints(self) -> list[dict]:
        return list(self._lines("checkpoints.jsonl"))


def verify_bundle(path, kept=(), keys: Mapping[str, str] | str = "", profile: CryptoProfile | None = None) -> Report:
    """Check a bundle's records against its own checkpoints and those a holder
    ``kept``, with the public ``keys`` the verifier trusts (``{key id: key}``,
    or the text of a public-key file) — never the bundle's own. The chain is
    read with ``profile``, else the hash the manifest names (SHA-256 or SM3)."""
    if isinstance(keys, str):
        keys = public_keys(keys)
    with Bundle(path) as bundle:
        if profile is None:
            profile = profiles.profile_hashing_with(bundle.manifest.get("chain"))
            if profile is None:
                raise BundleError(f"the bundle's chain is hashed with {bundle.manifest.get('chain')!r}: "
                                  f"this verifier reads sha256 and sm3")
        checkpoints = [(cp, "kept") for cp in kept] + [(cp, "bundle's") for cp in bundle.checkpoints()]
        with closing(bundle.records()) as rows:
            return verify_log(rows, checkpoints, keys, profile)
