"""Signed checkpoints of the audit chain (签名检查点): the format, signing, and checking a log against them.

A contract, like :mod:`contracts.audit_chain`: the audit service signs
checkpoints with it, and anyone holding one checks a log — the database
(``dibao audit verify``) or an exported bundle, offline — with this module
alone and the deployment's public key.

A checkpoint fixes the chain at one record and is published to the partner
bureaus as the event ``audit.checkpoint_signed`` (:mod:`contracts.audit`),
whose payload is exactly the dict this module signs:

- ``seq`` / ``head_hash`` / ``records``: the last record it covers, that
  record's chain hash, and how many records the chain then had;
- ``previous_seq`` / ``previous_hash``: the checkpoint before it (0 and 64
  zeros for the first): its range is the records ``previous_seq + 1 .. seq``;
- ``locator``: base64 of the first 8 bytes of the chain hash of every record
  of the range, in order — or empty (the range does not start with an
  anchor, :data:`contracts.audit_chain.ANCHOR_TYPE`, or is longer than
  :data:`MAX_LOCATED`). With it, a log rewritten inside the range and
  rehashed is caught *at the first record changed*: that record's hash is
  the first that differs. The range starts with an anchor (a random nonce
  nobody outside the audit database has), so each hash depends on a secret
  and the prefixes reveal nothing of the records: they are partner-safe;
- ``signed_at``, ``key_id`` (the first 16 hex digits of sha256 of the raw
  public key), ``algorithm`` (``ed25519``, or ``sm2-sm3`` under the 国密
  profile), ``signature`` (base64, over ``dibao-audit-checkpoint-v1`` and
  the other fields as compact JSON with sorted keys).

The signing key (``AUDIT_SIGNING_KEY``, a secret of the audit service's own)
signs checkpoints and nothing else. Which algorithm signs, and which hash
chains the records, is the deployment's crypto profile (:mod:`shared.profiles`,
``CRYPTO_PROFILE``): a checkpoint is checked with the algorithm it names
(signed), and one of the other profile's algorithm does not vouch for a log
read under this one.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Mapping

import sqlalchemy as sa
from contracts.audit_chain import GENESIS, ChainWalk, Finding, Verification, read_records
from shared import profiles
from shared.profiles import CryptoProfile
from shared.secrets import load_secret

#: the international profile's algorithm (the gm profile's: ``sm2-sm3``; shared.profiles)
ALGORITHM = profiles.INTL.signature_name
#: bytes of each record's hash a checkpoint's locator keeps
LOCATOR_BYTES = 8
#: a longer range is signed without a locator (the event would be too large)
MAX_LOCATED = 20000
FIELDS = ("seq", "head_hash", "records", "signed_at", "key_id", "algorithm", "previous_seq", "previous_hash",
          "locator", "signature")
_DOMAIN = b"dibao-audit-checkpoint-v1\n"


def audit_checkpoint_table(metadata: sa.MetaData) -> sa.Table:
    """The checkpoints the audit service signed (append-only, like the record)."""
    return sa.Table(
        "audit_checkpoints", metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("algorithm", sa.String(20), nullable=False),
        sa.Column("previous_seq", sa.Integer, nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("locator", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False, doc="base64 raw key, Ed25519 or SM2 (not signed: a verifier brings its own)"),
    )


audit_checkpoints = audit_checkpoint_table(sa.MetaData())


# --- keys -------------------------------------------------------------------------

def signing_key(config: dict, profile: CryptoProfile | None = None):
    """The checkpoint signer of the deployment's profile (Ed25519, or SM2 under
    ``gm``): ``AUDIT_SIGNING_KEY`` is its 32-byte seed, base64 (the setting,
    else ``<SECRETS_DIR>/audit_signing_key``; a published one is refused)."""
    seed = base64.b64decode(load_secret(config, "AUDIT_SIGNING_KEY"))
    if len(seed) != 32:
        raise ValueError("AUDIT_SIGNING_KEY must be 32 bytes, base64")
    return (profile or profiles.profile_of(config)).signer(seed)


def public_key_text(key) -> str:
    """base64 of the signer's raw public key (Ed25519: 32 bytes; SM2: the point x ‖ y, 64)."""
    return profiles.as_signer(key).public_key_text()


def key_id(public_key: str) -> str:
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()[:16]


def public_keys(text: str) -> dict[str, str]:
    """``{key id: key}`` of a public-key file: one base64 key (as ``dibao audit
    public-key`` prints it) per line; ``#`` starts a comment."""
    keys = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            raw = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"not a base64 public key: {line[:20]}…") from None
        if len(raw) not in (32, 64):
            raise ValueError(f"a public key is 32 bytes (Ed25519) or 64 (SM2), not {len(raw)}")
        keys[key_id(line)] = line
    if not keys:
        raise ValueError("no public key in it")
    return keys


# --- signing ----------------------------------------------------------------------

def encode_locator(hashes: list[str]) -> str:
    return base64.b64encode(b"".join(bytes.fromhex(h)[:LOCATOR_BYTES] for h in hashes)).decode("ascii")


def locator_of(cp: Mapping) -> list[str] | None:
    """The hex prefixes a checkpoint's locator fixes (None: it has none)."""
    if not cp.get("locator"):
        return None
    raw = base64.b64decode(cp["locator"])
    return [raw[i:i + LOCATOR_BYTES].hex() for i in range(0, len(raw), LOCATOR_BYTES)]


def signed_part(cp: Mapping) -> bytes:
    return _DOMAIN + json.dumps({k: cp[k] for k in FIELDS if k != "signature"}, sort_keys=True,
                                separators=(",", ":")).encode("utf-8")


def sign(key, seq: int, head_hash: str, previous_seq: int, previous_hash: str,
         hashes: list[str] | None = None, signed_at: str | None = None) -> dict:
    """The signed checkpoint of record ``seq`` after the one of ``previous_seq``;
    ``hashes``: the chain hash of every record of the range, for the locator."""
    if hashes is not None and len(hashes) != seq - previous_seq:
        raise ValueError(f"the locator needs {seq - previous_seq} hashes, not {len(hashes)}")
    key = profiles.as_signer(key)
    public = public_key_text(key)
    cp = {"seq": seq, "head_hash": head_hash, "records": seq,
          "signed_at": signed_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
          "key_id": key_id(public), "algorithm": key.algorithm, "previous_seq": previous_seq,
          "previous_hash": previous_hash, "locator": encode_locator(hashes) if hashes is not None else ""}
    cp["signature"] = base64.b64encode(key.sign(signed_part(cp))).decode("ascii")
    return cp


def check_signature(cp: Mapping, keys: Mapping[str, str]) -> bool:
    """Whether ``cp`` is signed by one of ``keys`` (``{key id: base64 key}``),
    with the algorithm it names."""
    try:
        key = keys[cp["key_id"]]
        profile = profiles.profile_signing_with(cp["algorithm"])
        if profile is None:
            return False
        return profile.verify_signature(key, base64.b64decode(cp["signature"], validate=True), signed_part(cp))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False


def to_row(cp: Mapping, public_key: str) -> dict:
    return {**{k: cp[k] for k in FIELDS}, "public_key": public_key}


def from_row(row: Mapping) -> dict:
    return {k: row[k] for k in FIELDS}


def stored(engine) -> list[dict]:
    """The checkpoints in the audit database, in order."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).mappings().all()
    return [from_row(r) for r in rows]


def load_kept(text: str) -> list[dict]:
    """The checkpoints in a file a holder kept: one checkpoint, a JSON list of
    them, or JSON lines — each the payload or the whole ``audit.checkpoint_signed`` event."""
    try:
        data = json.loads(text)
        items = data if isinstance(data, list) else [data]
    except ValueError:
        try:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError:
            raise ValueError("not JSON, nor JSON lines") from None
    out = []
    for n, item in enumerate(items, 1):
        if isinstance(item, dict) and item.get("type") == "checkpoint_signed" and isinstance(item.get("payload"), dict):
            item = item["payload"]
        if not isinstance(item, dict) or not set(FIELDS) <= item.keys():
            raise ValueError(f"item {n} is not a checkpoint (it needs {', '.join(FIELDS)})")
        out.append(item)
    if not out:
        raise ValueError("no checkpoint in it")
    return out


# --- checking a log against checkpoints -------------------------------------------------

@dataclass
class _Watch:
    cp: dict
    origin: str
    located: list[str] | None
    changed: int | None = None     # the first record of the range whose hash is not the one fixed
    before: bool = False           # the record before the range is not the one the checkpoint follows
    head: str | None = None        # the hash found at the checkpoint's record

    @property
    def start(self) -> int:
        return self.cp["previous_seq"]

    @property
    def seq(self) -> int:
        return self.cp["seq"]

    def name(self) -> str:
        return f"the {self.origin} checkpoint of record {self.seq} (signed {self.cp['signed_at']})"


class CheckpointWatch:
    """Checks the records fed to it (in ``seq`` order) against signed checkpoints."""

    def __init__(self, checkpoints: Iterable[tuple[Mapping, str]], keys: Mapping[str, str],
                 profile: CryptoProfile | None = None):
        profile = profile or profiles.current()
        self.findings: list[Finding] = []
        watches: dict[str, _Watch] = {}
        for cp, origin in checkpoints:
            if check_signature(cp, keys) and cp.get("algorithm") != profile.signature_name:
                self.findings.append(Finding("unsigned", _int(cp.get("seq")), (
                    f"the {origin} checkpoint of this record is signed with {cp.get('algorithm')}: it was made "
                    f"under the other crypto profile, this log is read under CRYPTO_PROFILE={profile.name}")))
                continue
            if not check_signature(cp, keys):
                self.findings.append(Finding("unsigned", _int(cp.get("seq")),
                                             f"the {origin} checkpoint of this record (key {cp.get('key_id')}) "
                                             f"does not verify with the public key given: it is not the deployment's"))
                continue
            try:
                located = locator_of(cp)
            except (binascii.Error, ValueError):
                located = None
            watches.setdefault(cp["signature"], _Watch(dict(cp), origin, located))
        self.watches = sorted(watches.values(), key=lambda w: (w.start, w.seq))
        self.active: list[_Watch] = []
        self.next = 0
        self.last = (0, GENESIS)   # (seq, hash) of the record fed before

    def feed(self, row: Mapping) -> None:
        seq, digest = row["seq"], row["hash"]
        while self.next < len(self.watches) and self.watches[self.next].start < seq:
            watch = self.watches[self.next]
            self.next += 1
            watch.before = self.last != (watch.start, watch.cp["previous_hash"])
            self.active.append(watch)
        still = []
        for watch in self.active:
            if seq > watch.seq or watch.before:
                continue
            index = seq - watch.start - 1
            if watch.located is not None and watch.changed is None and (
                    index >= len(watch.located) or digest[:2 * LOCATOR_BYTES] != watch.located[index]):
                watch.changed = seq
            if seq == watch.seq:
                watch.head = digest
            else:
                still.append(watch)
        self.active = still
        self.last = (seq, digest)

    def end(self, verification: Verification) -> tuple[list[Finding], list[dict]]:
        """(what is wrong, the checkpoints that hold) once every record was fed."""
        findings, held, missing = list(self.findings), [], None
        last_seq = self.last[0]
        for watch in self.watches:
            if watch.before:
                findings.append(Finding("rewritten", watch.start, (
                    f"not the record {watch.name()} follows (its hash differs): the log was rewritten at or "
                    f"before record {watch.start} — the earlier checkpoints name the record")))
            elif watch.changed is not None:
                findings.append(Finding("rewritten", watch.changed, (
                    f"not the record {watch.name()} fixed: its hash differs — it was changed, removed or "
                    f"inserted, and the chain after it rehashed")))
            elif watch.head == watch.cp["head_hash"]:
                held.append(watch.cp)
            elif watch.head is not None:
                findings.append(Finding("rewritten", watch.seq, (
                    f"no longer has the hash {watch.name()} fixed: the log was rewritten between records "
                    f"{watch.start + 1} and {watch.seq} (this checkpoint has no locator to name the record)")))
            elif verification.finding is None and (missing is None or watch.seq > missing.seq):
                missing = watch
        if missing is not None:
            findings.append(Finding("missing", last_seq + 1, (
                f"records {last_seq + 1}–{missing.seq} are missing: the log ends at record {last_seq}, "
                f"and {missing.name()} fixed {missing.cp['records']} records")))
        return findings, held


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass
class Report:
    """The chain walked and checked against checkpoints: ``findings`` first-record first."""

    verification: Verification
    findings: list[Finding] = field(default_factory=list)
    held: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


_ORDER = {"altered": 0, "removed": 0, "inserted": 0, "rewritten": 1, "missing": 2, "unsigned": 3}


def verify_log(rows: Iterable[Mapping], checkpoints: Iterable[tuple[Mapping, str]] = (),
               keys: Mapping[str, str] | None = None, profile: CryptoProfile | None = None) -> Report:
    """Walk ``rows`` (the records in ``seq`` order) and check them against
    ``checkpoints`` — ``(checkpoint, where it comes from)`` pairs, each signed
    by one of ``keys`` — hashed and signed under ``profile`` (default: the process's)."""
    chain, watch = ChainWalk(profile), CheckpointWatch(checkpoints, keys or {}, profile)
    for row in rows:
        watch.feed(row)
        if chain.feed(row):
            break
    verification = chain.end()
    findings, held = watch.end(verification)
    if verification.finding is not None:
        findings.append(verification.finding)
    unique = {(f.kind, f.seq): f for f in findings}
    return Report(verification, sorted(unique.values(), key=lambda f: (f.seq, _ORDER.get(f.kind, 9))), held)


def verify_database(engine, kept: Iterable[Mapping] = (), keys: Mapping[str, str] | None = None,
                    include_stored: bool = True, profile: CryptoProfile | None = None) -> Report:
    """The audit database's log against the checkpoints a holder ``kept`` and
    (``include_stored``) those the database itself keeps."""
    checkpoints = [(cp, "kept") for cp in kept]
    if include_stored:
        checkpoints += [(cp, "stored") for cp in stored(engine)]
    with closing(read_records(engine)) as rows:
        return verify_log(rows, checkpoints, keys, profile)
