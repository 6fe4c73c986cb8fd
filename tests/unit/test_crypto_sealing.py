"""shared.sealing and shared.rotation at the SQL level, as an insider with the
database (not the keys) would try them — under both profiles: a token copied
to another row or column fails the ORM read (typed, logged without the
plaintext); plaintext never reaches SQL; set-based copies between columns
bound alike work; rotation re-encrypts in batches while a running reader
keeps reading; a database keeps one profile."""

import logging
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared import crypto, profiles
from shared.crypto import FieldCipher, FieldUnreadable, Keyring, configure, key_id_of
from shared.profiles import PROFILES, ProfileMismatch, check_database_profile
from shared.rotation import key_usage, reseal
from shared.sealing import Ciphertext, EncryptedDecimal, EncryptedString, SealedStr, UnsealedWrite, seal_value

SERVICE = "sealing-test"


class Base(DeclarativeBase):
    pass


def new_id() -> str:
    return str(uuid.uuid4())


class Person(Base):
    __tablename__ = "person"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    resident_id: Mapped[str] = mapped_column(EncryptedString)
    phone: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)


class Income(Base):
    """An integer id the database numbers: the tokens are bound to ``seal_id``."""

    __tablename__ = "income"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(sa.String(36))
    amount: Mapped[Decimal] = mapped_column(EncryptedDecimal(row_key="seal_id"))
    seal_id: Mapped[str] = mapped_column(sa.String(36), default=new_id, unique=True)


class Ledger(Base):
    __tablename__ = "ledger"
    case_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    account: Mapped[str | None] = mapped_column(EncryptedString, nullable=True)


class Line(Base):
    """A snapshot of the ledger's token, sealed as the ledger's (as payment_line)."""

    __tablename__ = "line"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(sa.String(36))
    account: Mapped[str | None] = mapped_column(EncryptedString(bound_as="ledger", row_key="case_id"), nullable=True)


Base.metadata.info["dibao_service"] = SERVICE


@pytest.fixture(params=sorted(PROFILES), ids=lambda name: f"profile={name}")
def profile(request, monkeypatch):
    monkeypatch.setattr(crypto, "_ciphers", {})
    monkeypatch.setattr(profiles, "_current", PROFILES[request.param])
    return PROFILES[request.param]


@pytest.fixture
def keyring():
    return {"ring": Keyring.generate()}


@pytest.fixture
def cipher(profile, keyring):
    c = FieldCipher(keyring["ring"], profile, index_key=b"i" * 32, source=lambda: keyring["ring"])
    configure(c, SERVICE)
    return c


@pytest.fixture
def engine(tmp_path, cipher):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/sealing.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def raw(engine, sql, **params):
    with engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else None


def two_people(engine):
    with Session(engine) as s:
        a, b = Person(resident_id="420115199601011231", phone="13800000001"), Person(resident_id="420115198802023452")
        s.add_all([a, b])
        s.commit()
        return a.id, b.id


def test_orm_round_trip_stores_tokens_only(engine, cipher):
    a, b = two_people(engine)
    (token, phone), = raw(engine, "SELECT resident_id, phone FROM person WHERE id = :id", id=a)
    assert token.startswith(f"v2:{cipher.primary}:") and "420115" not in token
    with Session(engine) as s:
        person = s.get(Person, a)
        assert person.resident_id == "420115199601011231" and isinstance(person.resident_id, SealedStr)
        assert not s.dirty
        person.phone = "13900000009"                 # an update is sealed for the same cell
        s.commit()
    with Session(engine) as s:
        assert s.get(Person, a).phone == "13900000009" and s.get(Person, b).phone is None


def test_a_token_copied_to_another_row_fails_the_read_typed_and_logged_without_plaintext(engine, caplog):
    a, b = two_people(engine)
    # the insider: B's ID number token over A's, in raw SQL
    raw(engine, "UPDATE person SET resident_id = (SELECT resident_id FROM person WHERE id = :b) WHERE id = :a",
        a=a, b=b)
    (token,), = raw(engine, "SELECT resident_id FROM person WHERE id = :a", a=a)
    with caplog.at_level(logging.ERROR, logger="shared.crypto"), Session(engine) as s:
        with pytest.raises(FieldUnreadable) as err:
            s.get(Person, a)
        assert s.get(Person, b).resident_id == "420115198802023452"   # the row it belongs to still reads
    assert (err.value.table, err.value.column, err.value.row) == ("person", "resident_id", a)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"person.resident_id of row {a}" in logged
    for secret in ("420115198802023452", token, token[6:]):
        assert secret not in logged and secret not in str(err.value)


def test_a_token_copied_to_another_column_fails(engine):
    a, _ = two_people(engine)
    raw(engine, "UPDATE person SET phone = resident_id WHERE id = :a", a=a)
    with Session(engine) as s, pytest.raises(FieldUnreadable, match="person.phone"):
        s.get(Person, a)


def test_amounts_swapped_between_rows_the_database_numbers_fail(engine):
    person = new_id()
    with Session(engine) as s:
        s.add_all([Income(person_id=person, amount=Decimal("0.00")), Income(person_id=person, amount=Decimal("3000.00"))])
        s.commit()
    rows = raw(engine, "SELECT id, seal_id FROM income ORDER BY id")
    assert all(seal for _, seal in rows)
    # "income 3000 → 0": the zero's token copied over the other
    raw(engine, "UPDATE income SET amount = (SELECT amount FROM income WHERE id = 1) WHERE id = 2")
    with Session(engine) as s:
        with pytest.raises(FieldUnreadable, match="income.amount"):
            s.scalars(sa.select(Income).order_by(Income.id)).all()


def test_plaintext_never_reaches_sql_and_core_reads_give_ciphertext(engine):
    a, _ = two_people(engine)
    with Session(engine) as s:
        with pytest.raises(sa.exc.StatementError) as err:
            s.execute(sa.update(Person).where(Person.id == a).values(phone="13700000000"))
        assert isinstance(err.value.orig, UnsealedWrite)
        value = s.execute(sa.select(Person.resident_id).where(Person.id == a)).scalar()
    assert isinstance(value, Ciphertext)
    with pytest.raises(TypeError, match="ciphertext"):
        f"{value}"
    with engine.begin() as conn, pytest.raises(sa.exc.StatementError):
        conn.execute(Person.__table__.insert().values(id=new_id(), resident_id="420115199601011231"))


def test_set_based_copies_between_columns_bound_alike(engine):
    with Session(engine) as s:
        s.add_all([Ledger(case_id="c1", account="6222000000000001"), Ledger(case_id="c2", account="6222000000000002")])
        s.commit()
    # the payment run: one INSERT … SELECT from the ledger; the line keeps its case's token
    raw(engine, "INSERT INTO line (case_id, account) SELECT case_id, account FROM ledger")
    with Session(engine) as s:
        lines = {ln.case_id: ln.account for ln in s.scalars(sa.select(Line))}
    assert lines == {"c1": "6222000000000001", "c2": "6222000000000002"}
    # the insider: c2's line paid to c1's account
    raw(engine, "UPDATE line SET account = (SELECT account FROM ledger WHERE case_id = 'c1') WHERE case_id = 'c2'")
    with Session(engine) as s, pytest.raises(FieldUnreadable, match="line.account"):
        s.scalars(sa.select(Line)).all()


def test_bulk_core_inserts_seal_per_row(engine):
    table = Person.__table__
    rows = [{"id": f"p{n}", "resident_id": seal_value(table.c.resident_id, f"p{n}", f"42011519960101{n:04d}")}
            for n in range(5)]
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    with Session(engine) as s:
        assert s.get(Person, "p3").resident_id == "420115199601010003"


def test_an_object_copied_value_is_sealed_again_for_its_own_row(engine):
    with Session(engine) as s:
        ledger = Ledger(case_id="c1", account="6222000000000001")
        s.add(ledger)
        s.flush()
        s.add(Person(resident_id=ledger.account))   # the sealed value of another cell, as plaintext
        s.commit()
    with Session(engine) as s:
        assert s.scalars(sa.select(Person)).one().resident_id == "6222000000000001"


# --- rotation ----------------------------------------------------------------------

def populate(engine, n=7):
    with Session(engine) as s:
        for i in range(n):
            s.add(Person(id=f"p{i}", resident_id=f"42011519960101{i:04d}", phone=None if i % 2 else f"138{i:08d}"))
            s.add(Income(person_id=f"p{i}", amount=Decimal(f"{i}.50")))
            s.add(Ledger(case_id=f"c{i}", account=f"6222{i:012d}"))
        s.commit()
    raw(engine, "INSERT INTO line (case_id, account) SELECT case_id, account FROM ledger")


def read_all(engine):
    with Session(engine) as s:
        return ({p.id: (p.resident_id, p.phone) for p in s.scalars(sa.select(Person))},
                sorted(i.amount for i in s.scalars(sa.select(Income))),
                {ln.case_id: ln.account for ln in s.scalars(sa.select(Line))})


def test_rotation_reencrypts_in_batches_while_a_running_reader_reads_both(engine, cipher, keyring, profile):
    populate(engine)
    before = read_all(engine)
    old = cipher.primary
    keyring["ring"] = keyring["ring"].with_new_key()          # the file now has both; the service has one
    new = keyring["ring"].primary
    rotator = FieldCipher(keyring["ring"], profile)           # the `dibao keys rotate` process
    assert cipher.key_ids() == [old]
    seen = []

    def meanwhile(report):
        # the running service, mid-rotation: reads every row (old and new tokens) and writes one
        seen.append(read_all(engine))
        with Session(engine) as s:
            s.get(Person, "p1").phone = "13711111111"
            s.commit()

    report = reseal(engine, Base.metadata, rotator, batch=3, on_batch=meanwhile)
    assert report.batches > 3 and report.done and not report.unreadable
    assert all(snapshot[0]["p0"] == before[0]["p0"] for snapshot in seen)
    assert old in cipher.key_ids() and new in cipher.key_ids()   # the reader re-read its keyring
    after = read_all(engine)
    assert after[1:] == before[1:]
    assert after[0]["p1"] == (before[0]["p1"][0], "13711111111") and after[0]["p2"] == before[0]["p2"]
    usage = key_usage(engine, Base.metadata, [old, new])
    assert all(counts[old] == 0 and counts["other"] == 0 for counts in usage.values())
    assert usage["person.resident_id"][new] == 7 and usage["line.account"][new] == 7


def test_rotation_carries_v1_tokens_and_leaves_unreadable_ones_under_their_key(engine, profile, keyring):
    populate(engine, 3)
    legacy = bytes(range(32))
    keyring["ring"] = Keyring({"v1": legacy, **keyring["ring"].keys})
    reader = FieldCipher(keyring["ring"], profile, source=lambda: keyring["ring"])
    configure(reader, SERVICE)
    # a row as the old code wrote it: v1, no associated data
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    import base64
    sub = HKDF(hashes.SHA256(), 32, None, b"dibao-aes-gcm-v1").derive(legacy)
    v1 = "v1:" + base64.urlsafe_b64encode(bytes(12) + AESGCM(sub).encrypt(bytes(12), b"13812345678", None)).decode()
    raw(engine, "UPDATE person SET phone = :v1 WHERE id = 'p1'", v1=v1)
    raw(engine, "UPDATE person SET resident_id = (SELECT resident_id FROM person WHERE id = 'p0') WHERE id = 'p2'")
    keyring["ring"] = keyring["ring"].with_new_key()
    report = reseal(engine, Base.metadata, FieldCipher(keyring["ring"], profile), batch=2)
    assert report.unreadable == {"person.resident_id": 1} and report.remaining["person.resident_id"] == 1
    assert not report.done
    usage = key_usage(engine, Base.metadata, list(keyring["ring"].keys))
    assert usage["person.phone"]["v1"] == 0 and usage["person.resident_id"][keyring["ring"].primary] == 2
    with Session(engine) as s:
        assert key_id_of(raw(engine, "SELECT phone FROM person WHERE id = 'p1'")[0][0]) == keyring["ring"].primary
        assert s.get(Person, "p1").phone == "13812345678"


# --- one database, one profile -------------------------------------------------------

def test_a_database_keeps_the_profile_it_was_made_with(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/profile.db")
    assert check_database_profile(engine, "intake", PROFILES["gm"]) == "gm"
    assert check_database_profile(engine, "intake", PROFILES["gm"]) == "gm"
    with pytest.raises(ProfileMismatch, match="CRYPTO_PROFILE=gm.*CRYPTO_PROFILE=intl") as err:
        check_database_profile(engine, "intake", PROFILES["intl"])
    assert str(err.value).startswith("intake refuses to start")
    older = sa.create_engine(f"sqlite:///{tmp_path}/older.db")   # made before profiles: it is intl
    raw(older, "CREATE TABLE household (id TEXT)")
    with pytest.raises(ProfileMismatch, match="CRYPTO_PROFILE=intl"):
        check_database_profile(older, "intake", PROFILES["gm"])
