"""The audit bundle (issue 13 item 6): ``dibao audit export`` writes the
record, its checkpoints and public keys; ``dibao audit verify --bundle``
checks it offline — no database, no service code — and names what was done
to it: a record altered, a rewrite rehashed after a checkpoint, a tail cut
off after one."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
from typer.testing import CliRunner

from cli.root import app
from contracts import audit_chain as chain
from shared.config import REPO_ROOT
from tests.audit_helpers import write_chain
from tests.integration.test_reliability import write_config

pytestmark = pytest.mark.integration

#: where a verifier without database access points its config: nothing answers there
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/no_database"


def dibao(config: dict, tmp_path, *args: str, name: str = "cli.yml"):
    return CliRunner().invoke(app, ["--config", write_config(config, tmp_path / name), *args],
                              env={"COLUMNS": "250"})


@pytest.fixture
def exported(sqlite_config, tmp_path, crypto_profile):
    """A written chain (checkpoints at 15 and 30), exported; the partner's kept
    checkpoint events and the deployment's public key, as files."""
    db, kept, _ = write_chain(sqlite_config)
    db.dispose()
    bundle = tmp_path / "audit-bundle.zip"
    done = dibao(sqlite_config, tmp_path, "audit", "export", "--out", str(bundle))
    assert done.exit_code == 0, done.output
    assert "31 records (head 31), 2 checkpoint(s)" in done.output
    key = tmp_path / "audit-public-key.txt"
    key.write_text(dibao(sqlite_config, tmp_path, "audit", "public-key").output)
    every = tmp_path / "kept.jsonl"                       # every event the partner received, as received
    every.write_text("".join(json.dumps(event, ensure_ascii=False) + "\n" for event in kept), encoding="utf-8")
    last = tmp_path / "last-checkpoint.json"
    last.write_text(json.dumps(kept[-1]["payload"]), encoding="utf-8")
    offline = dict(sqlite_config, DB_URIS={"audit": NO_DATABASE})
    return {"bundle": bundle, "key": key, "kept": every, "last": last, "offline": offline}


def verify_offline(exported, tmp_path, bundle=None, checkpoint=None):
    args = ["audit", "verify", "--bundle", str(bundle or exported["bundle"]), "--public-key", str(exported["key"])]
    if checkpoint:
        args += ["--checkpoint", str(checkpoint)]
    return dibao(exported["offline"], tmp_path, *args, name="offline.yml")


def rewrite_bundle(source, target, records=lambda rows: rows, checkpoints=lambda cps: cps) -> None:
    """A copy of a bundle with its records and checkpoints changed."""
    with zipfile.ZipFile(source) as old:
        rows = [json.loads(line) for line in old.read("records.jsonl").decode().splitlines()]
        cps = [json.loads(line) for line in old.read("checkpoints.jsonl").decode().splitlines()]
        manifest = old.read("manifest.json")
    with zipfile.ZipFile(target, "w") as new:
        new.writestr("manifest.json", manifest)
        new.writestr("records.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(rows)))
        new.writestr("checkpoints.jsonl", "".join(json.dumps(c) + "\n" for c in checkpoints(cps)))


def rehashed(rows: list[dict], k: int, **changes) -> list[dict]:
    out, prev = [], None
    for row in rows:
        if row["seq"] >= k:
            row = dict(row, **changes) if row["seq"] == k else dict(row)
            row["prev_hash"] = prev
            row["hash"] = chain.link(prev, row)
        out.append(row)
        prev = row["hash"]
    return out


def test_an_exported_bundle_verifies_offline_with_the_kept_checkpoints(exported, tmp_path):
    with zipfile.ZipFile(exported["bundle"]) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        assert set(bundle.namelist()) == {"manifest.json", "records.jsonl", "checkpoints.jsonl"}
    assert (manifest["format"], manifest["version"], manifest["records"], manifest["checkpoints"]) == (
        "dibao-audit-bundle", 1, 31, 2)
    assert list(manifest["public_keys"].values()) == [exported["key"].read_text().strip()]
    ok = verify_offline(exported, tmp_path, checkpoint=exported["kept"])
    assert ok.exit_code == 0, ok.output
    assert "chain verifies: 31 records, head 31" in ok.output and "2 signed checkpoint(s) hold" in ok.output
    assert ok.output.count("checkpoint holds") == 2
    no_key = dibao(exported["offline"], tmp_path, "audit", "verify", "--bundle", str(exported["bundle"]))
    assert no_key.exit_code == 1 and "--bundle needs --public-key" in no_key.output


def test_a_record_altered_in_the_bundle_is_named(exported, tmp_path):
    forged = tmp_path / "altered.zip"
    rewrite_bundle(exported["bundle"], forged,
                   records=lambda rows: [dict(r, actor_name="李四") if r["seq"] == 12 else r for r in rows])
    bad = verify_offline(exported, tmp_path, forged, exported["last"])
    assert bad.exit_code == 2 and "verify FAILED: record 12 altered" in bad.output, bad.output


def test_a_rewrite_rehashed_after_a_checkpoint_is_named_at_the_first_changed_record(exported, tmp_path):
    forged = tmp_path / "rehashed.zip"
    rewrite_bundle(exported["bundle"], forged, records=lambda rows: rehashed(rows, 22, actor_name="伪造"),
                   checkpoints=lambda cps: [c for c in cps if c["seq"] < 22])     # and the checkpoint dropped
    alone = verify_offline(exported, tmp_path, forged)
    assert alone.exit_code == 0                                  # without what the partner kept, it passes
    bad = verify_offline(exported, tmp_path, forged, exported["last"])
    assert bad.exit_code == 2 and "verify FAILED: record 22 rewritten" in bad.output, bad.output


def test_a_tail_truncated_after_a_checkpoint_is_named_as_the_missing_range(exported, tmp_path):
    cut = tmp_path / "truncated.zip"
    rewrite_bundle(exported["bundle"], cut, records=lambda rows: [r for r in rows if r["seq"] <= 26])
    bad = verify_offline(exported, tmp_path, cut)                # its own checkpoint of record 30 says so
    assert bad.exit_code == 2 and "verify FAILED: record 27 missing: records 27–30 are missing" in bad.output
    stripped = tmp_path / "truncated-and-stripped.zip"
    rewrite_bundle(exported["bundle"], stripped, records=lambda rows: [r for r in rows if r["seq"] <= 26],
                   checkpoints=lambda cps: cps[:1])
    assert verify_offline(exported, tmp_path, stripped).exit_code == 0
    bad = verify_offline(exported, tmp_path, stripped, exported["kept"])
    assert bad.exit_code == 2 and "records 27–30 are missing" in bad.output, bad.output


def test_a_bundle_signed_by_another_key_or_not_a_bundle_fails(exported, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from contracts.audit_checkpoints import public_key_text

    other = tmp_path / "other-key.txt"
    other.write_text(public_key_text(Ed25519PrivateKey.generate()) + "\n")
    bad = dibao(exported["offline"], tmp_path, "audit", "verify", "--bundle", str(exported["bundle"]),
                "--public-key", str(other), name="offline.yml")
    assert bad.exit_code == 2 and "does not verify with the public key given" in bad.output
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    bad = verify_offline(exported, tmp_path, junk)
    assert bad.exit_code == 2 and "not an audit bundle" in bad.output


def test_the_offline_verifier_loads_no_service_code_and_touches_no_database(exported, tmp_path):
    config = write_config(exported["offline"], tmp_path / "offline.yml")
    code = ("import sys\n"
            "from cli.root import app\n"
            "try:\n"
            f"    app({['--config', config, 'audit', 'verify', '--bundle', str(exported['bundle']), '--public-key', str(exported['key']), '--checkpoint', str(exported['last'])]!r})\n"
            "except SystemExit as exc:\n"
            "    print('exit', exc.code)\n"
            "print('loaded', sorted({m.split('.')[0] for m in sys.modules} & {'services', 'sqlalchemy.dialects.postgresql.psycopg2'}),"
            " sorted(m for m in sys.modules if m.startswith('psycopg2')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="200"))
    assert "chain verifies" in out.stdout and "exit 0" in out.stdout, out.stdout + out.stderr
    assert "loaded [] []" in out.stdout, out.stdout
