"""Encryption at rest as an insider tries it, over the running services: a
token copied to another row in raw SQL fails the read (intake, payments),
and ``dibao keys rotate`` re-encrypts intake's tokens in batches while intake
runs and serves — then ``retire`` drops the old key, and not before. On
SQLite and PostgreSQL."""
from __future__ import annotations

import eventlet
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli.root import app
from services.intake.service import IntakeService
from shared.crypto import Keyring, key_id_of
from shared.db import make_engine
from shared.secrets import load_secret
from tests.helpers import COMMUNITY, household, investigation, officer, register_staff, yesterday
from tests.integration.test_reliability import write_config

pytestmark = pytest.mark.integration
runner = CliRunner()


def said(result) -> str:
    """The command's output on one line (rich wraps long lines)."""
    return " ".join(result.output.split())


@pytest.fixture
def intake(container_factory, config):
    container = container_factory(IntakeService, config)
    container.start()
    register_staff(config, services=("intake",))
    return container


def register(config, seeds) -> dict:
    """household id → its data, registered (with an income) and investigated."""
    made = {}
    with officer(config) as rpc:
        for seed in seeds:
            data = household(seed=seed)
            data["incomes"] = [{"member": 0, "source": "wages", "monthly_amount": f"{seed}.25"}]
            created = rpc.intake.register_household(data)
            app_ = rpc.intake.submit_application({"household_id": created["household_id"],
                                                  "accepted_on": yesterday(), "reason": "因病致贫"})
            rpc.intake.record_investigation(investigation(app_["id"], created["member_ids"]))
            made[created["household_id"]] = data
    return made


def read_back(config, households: dict) -> None:
    with officer(config) as rpc:
        for hid, data in households.items():
            file = rpc.intake.get_household(hid)
            assert [m["resident_id"] for m in file["members"]] == [m["resident_id"] for m in data["members"]]


def tokens(config) -> list[str]:
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.connect() as conn:
            found = []
            for table, column in (("member", "resident_id"), ("income", "monthly_amount"), ("household", "phone"),
                                  ("home_investigation", "verified_monthly_income")):
                found += [v for v in conn.execute(sa.text(f"SELECT {column} FROM {table}")).scalars() if v]
            return found
    finally:
        engine.dispose()


def sql(config, statement: str, **params) -> None:
    engine = make_engine(config["DB_URIS"]["intake"])
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_an_id_number_copied_to_another_member_fails_the_read_and_names_no_plaintext(intake, config, caplog):
    import logging

    households = register(config, [31, 32])
    (a, data_a), (b, data_b) = households.items()
    # the insider, in raw SQL: household B's head gets A's head's ID number token
    sql(config, "UPDATE member SET resident_id = (SELECT resident_id FROM member WHERE household_id = :a "
                "AND position = 0) WHERE household_id = :b AND position = 0", a=a, b=b)
    with caplog.at_level(logging.ERROR, logger="shared.crypto"), officer(config) as rpc:
        assert rpc.intake.get_household(a)["members"][0]["resident_id"] == data_a["members"][0]["resident_id"]
        with pytest.raises(Exception) as refused:
            rpc.intake.get_household(b)
    # the caller: an internal error with a reference, nothing more; the log: which field, row and key
    assert "internal error" in str(refused.value) and "reference" in str(refused.value)
    logged = [r.getMessage() for r in caplog.records if r.name == "shared.crypto"]
    assert any("member.resident_id of row" in line and "does not open" in line for line in logged), logged
    for text in logged + [str(refused.value)]:
        assert data_a["members"][0]["resident_id"] not in text and "v2:" not in text


def test_rotation_while_intake_runs_then_retire(intake, config, tmp_path):
    path = write_config(config, tmp_path / "dibao.yml")
    households = register(config, range(1, 6))
    setting = "DATA_KEY_INTAKE"
    old = Keyring.parse(load_secret(config, setting)).primary
    assert {key_id_of(t) for t in tokens(config)} == {old}

    refused = runner.invoke(app, ["--config", path, "keys", "retire", "intake", old])
    assert refused.exit_code == 1 and "encrypts with" in said(refused)

    # intake keeps serving (reads and new registrations) while the rotation runs, batch by batch
    problems, written = [], {}

    def meanwhile():
        for n in range(4):
            try:
                read_back(config, households)
                written.update(register(config, [100 + n]))
            except Exception as exc:   # noqa: BLE001 — reported below
                problems.append(repr(exc))
            eventlet.sleep(0.5)

    worker = eventlet.spawn(meanwhile)
    rotated = runner.invoke(app, ["--config", path, "keys", "rotate", "intake", "--batch", "2"])
    worker.wait()
    assert rotated.exit_code == 0, rotated.output
    assert not problems, problems
    new = Keyring.parse(load_secret(config, setting)).primary
    assert new != old and f"under {new}" in said(rotated) and f"dibao keys retire intake {old}" in said(rotated)
    assert {key_id_of(t) for t in tokens(config)} == {new}
    read_back(config, {**households, **written})

    listing = runner.invoke(app, ["--config", path, "keys", "list", "intake"])
    assert listing.exit_code == 0 and f"{new} (encrypts)" in said(listing) and "member.resident_id" in said(listing)
    retired = runner.invoke(app, ["--config", path, "keys", "retire", "intake", old])
    assert retired.exit_code == 0, retired.output
    assert list(Keyring.parse(load_secret(config, setting)).keys) == [new]
    for value in Keyring.parse(load_secret(config, setting)).keys.values():
        assert value.hex() not in rotated.output + listing.output + retired.output
    read_back(config, households)          # the running service, on its re-read keyring
    register(config, [200])


def test_retire_refuses_while_any_token_uses_the_key(intake, config, tmp_path):
    path = write_config(config, tmp_path / "dibao.yml")
    register(config, [41])
    old = Keyring.parse(load_secret(config, "DATA_KEY_INTAKE")).primary
    added = runner.invoke(app, ["--config", path, "keys", "add", "intake"])
    assert added.exit_code == 0, added.output
    refused = runner.invoke(app, ["--config", path, "keys", "retire", "intake", old])
    assert refused.exit_code == 1 and "still use key" in said(refused) and "member.resident_id" in said(refused)
    assert old in Keyring.parse(load_secret(config, "DATA_KEY_INTAKE")).keys
    resumed = runner.invoke(app, ["--config", path, "keys", "rotate", "intake", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert runner.invoke(app, ["--config", path, "keys", "retire", "intake", old]).exit_code == 0


# --- the 国密 profile, end to end, and one profile per database ------------------------

def test_intake_runs_under_the_gm_profile_and_refuses_the_other(container_factory, sqlite_config):
    from shared import profiles
    from shared.crypto import FieldCipher, associated_data

    gm = dict(sqlite_config, CRYPTO_PROFILE="gm")
    container = container_factory(IntakeService, gm)
    container.start()
    register_staff(gm, services=("intake",))
    households = register(gm, [51, 52])
    read_back(gm, households)
    (hid, data), = list(households.items())[:1]
    with officer(gm) as rpc:   # the blind index (HMAC-SM3) finds it
        assert rpc.intake.find_household({"resident_id": data["members"][0]["resident_id"]})["id"] == hid
    engine = make_engine(gm["DB_URIS"]["intake"])
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT profile FROM crypto_profile")).scalar() == "gm"
        member_id, token = conn.execute(sa.text("SELECT id, resident_id FROM member WHERE household_id = :h "
                                                "AND position = 0"), {"h": hid}).one()
    engine.dispose()
    ring = Keyring.parse(load_secret(gm, "DATA_KEY_INTAKE"))
    expected = data["members"][0]["resident_id"]
    assert FieldCipher(ring, profiles.GM).decrypt(token, associated_data(profiles.GM, "member", "resident_id",
                                                                          member_id)) == expected
    with pytest.raises(ValueError):   # an SM4-GCM token is no AES-GCM one
        FieldCipher(ring, profiles.INTL).decrypt(token, associated_data(profiles.INTL, "member", "resident_id",
                                                                         member_id))
    container.stop()
    intl = container_factory(IntakeService, dict(sqlite_config, CRYPTO_PROFILE="intl"))
    with pytest.raises(profiles.ProfileMismatch) as refused:
        intl.start()
    assert "intake refuses to start" in str(refused.value) and "CRYPTO_PROFILE=gm" in str(refused.value)


# --- an older deployment: the shared DATA_KEY, v1 tokens, integer-numbered incomes -----

def test_an_old_deployment_upgrades_reads_its_v1_tokens_rotates_and_retires_v1(container_factory, config, tmp_path):
    """A database at intake's revision 0004 written by the old code (v1 tokens of
    the shared DATA_KEY, no seal ids, the old blind index), upgraded in place."""
    import base64
    import os
    import uuid
    from datetime import date, datetime, timezone

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    from services.intake.models import Household, Member
    from services.intake.service import MIGRATIONS
    from shared.crypto import legacy_index_key
    from shared.migrations import alembic_config
    from shared.profiles import INTL
    from shared.sealing import Ciphertext
    from shared.secrets import SECRETS, ensure_secrets, secrets_dir
    from alembic import command

    old_key = base64.b64decode(SECRETS["DATA_KEY"].generate())
    sub = HKDF(hashes.SHA256(), 32, None, b"dibao-aes-gcm-v1").derive(old_key)

    def v1(plain: str) -> Ciphertext:   # what the old FieldCipher.encrypt wrote
        nonce = os.urandom(12)
        return Ciphertext("v1:" + base64.urlsafe_b64encode(nonce + AESGCM(sub).encrypt(nonce, plain.encode(), None))
                          .decode())

    # the old deployment's secrets: only the shared key (the harness made new-style ones: not this one's)
    directory = secrets_dir(config)
    for name in ("data_key_intake", "blind_index_key_intake"):
        (directory / name).unlink()
    (directory / "data_key").write_text(base64.b64encode(old_key).decode() + "\n")
    engine = make_engine(config["DB_URIS"]["intake"])
    with engine.connect() as conn:
        command.upgrade(alembic_config(MIGRATIONS, "intake", conn), "0004")
        conn.commit()
    data = household(seed=61)
    head = data["members"][0]
    hid, mid, now = str(uuid.uuid4()), str(uuid.uuid4()), datetime.now(timezone.utc)
    index = INTL.mac(legacy_index_key(old_key), b"resident_id\x00" + head["resident_id"].encode())
    income = sa.table("income", sa.column("household_id"), sa.column("member_id"), sa.column("source"),
                      sa.column("monthly_amount"))
    with engine.begin() as conn:
        conn.execute(Household.__table__.insert().values(
            id=hid, head_name=head["name"], address="老街1号", phone=v1("13800000061"), community_code=COMMUNITY,
            township_code=COMMUNITY[:9], district_code=COMMUNITY[:6], area_type="urban", registered_at=now,
            registered_by="wang.officer", updated_at=now, version=1))
        conn.execute(Member.__table__.insert().values(
            id=mid, household_id=hid, position=0, name=head["name"], resident_id=v1(head["resident_id"]),
            resident_id_index=index, relation="self", birth_date=date(1980, 1, 1), sex="M",
            labour_capacity="full", disability="none", illness="none", employment="employed"))
        conn.execute(income.insert().values(household_id=hid, member_id=mid, source="wages",
                                            monthly_amount=v1("1500.00").token))
    engine.dispose()

    assert "DATA_KEY_INTAKE" in ensure_secrets(config)          # the next start carries the old key in
    intake = container_factory(IntakeService, config)
    intake.start()                                              # migrates 0004 → head: seal ids for old rows
    with officer(config) as rpc:
        file = rpc.intake.get_household(hid)
        assert file["members"][0]["resident_id"] == head["resident_id"] and file["phone"] == "13800000061"
        assert [str(i["monthly_amount"]) for i in file["incomes"]] == ["1500.00"]
        assert rpc.intake.find_household({"resident_id": head["resident_id"]})["id"] == hid   # the old index
    path = write_config(config, tmp_path / "dibao.yml")
    refused = runner.invoke(app, ["--config", path, "keys", "retire", "intake", "v1"])
    assert refused.exit_code == 1 and "still use key v1" in said(refused)
    rotated = runner.invoke(app, ["--config", path, "keys", "rotate", "intake", "--resume"])
    assert rotated.exit_code == 0, rotated.output
    assert {key_id_of(t) for t in tokens(config)} == {Keyring.parse(load_secret(config, "DATA_KEY_INTAKE")).primary}
    assert runner.invoke(app, ["--config", path, "keys", "retire", "intake", "v1"]).exit_code == 0
    assert "v1" not in Keyring.parse(load_secret(config, "DATA_KEY_INTAKE")).keys
    with officer(config) as rpc:
        again = rpc.intake.get_household(hid)
        assert again["members"][0]["resident_id"] == head["resident_id"]
        assert [str(i["monthly_amount"]) for i in again["incomes"]] == ["1500.00"]
        assert rpc.intake.find_household({"resident_id": head["resident_id"]})["id"] == hid
