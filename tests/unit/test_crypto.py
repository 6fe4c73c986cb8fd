"""shared.crypto: AES-GCM field encryption, blind index, SQLAlchemy types."""

import base64
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select, text

from shared import crypto
from shared.secrets import SECRETS
from shared.crypto import (
    EncryptedDecimal,
    EncryptedString,
    FieldCipher,
    configure,
    get_cipher,
    key_from_config,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def cipher(monkeypatch):
    monkeypatch.setattr(crypto, "_cipher", None)
    c = FieldCipher(KEY)
    configure(c)
    return c


def test_key_from_config():
    assert key_from_config(base64.b64encode(KEY).decode()) == KEY
    # what `dibao secrets init` generates for a deployment (shared.secrets), with the file's newline
    generated = SECRETS["DATA_KEY"].generate()
    assert key_from_config(generated + "\n") == base64.b64decode(generated)


@pytest.mark.parametrize(
    "value",
    [base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode(),
     "not base64!!", "", "dev-data-key"],
)
def test_key_from_config_rejects(value):
    with pytest.raises(ValueError, match="DATA_KEY"):
        key_from_config(value)


def test_cipher_needs_32_bytes():
    with pytest.raises(ValueError):
        FieldCipher(b"short")


def test_encrypt_decrypt_round_trip_and_format():
    c = FieldCipher(KEY)
    token = c.encrypt("420115199601011231")
    assert token.startswith("v1:")
    raw = base64.urlsafe_b64decode(token[3:])
    # 12-byte nonce + ciphertext (same length as the plaintext) + 16-byte tag
    assert len(raw) == 12 + len("420115199601011231") + 16
    assert "420115" not in token
    assert c.decrypt(token) == "420115199601011231"
    assert c.decrypt(c.encrypt("张三 ünï")) == "张三 ünï"
    assert c.decrypt(c.encrypt("")) == ""


def test_encryption_is_randomised():
    c = FieldCipher(KEY)
    assert c.encrypt("same") != c.encrypt("same")


def test_subkeys_differ_from_master_key():
    # Encrypting with AES-GCM under the raw master key must not produce a
    # decryptable token: the cipher uses the HKDF-derived sub-key.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    token = FieldCipher(KEY).encrypt("secret")
    raw = base64.urlsafe_b64decode(token[3:])
    with pytest.raises(Exception):
        AESGCM(KEY).decrypt(raw[:12], raw[12:], None)


def test_wrong_key_and_tampering_raise_value_error():
    token = FieldCipher(KEY).encrypt("1234.50")
    with pytest.raises(ValueError, match="wrong key or tampered"):
        FieldCipher(OTHER_KEY).decrypt(token)
    raw = bytearray(base64.urlsafe_b64decode(token[3:]))
    raw[-1] ^= 0x01
    tampered = "v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(ValueError, match="wrong key or tampered"):
        FieldCipher(KEY).decrypt(tampered)


@pytest.mark.parametrize("token", ["plain text", "v2:AAAA", "v1:***", "v1:" + "A" * 8, None])
def test_malformed_tokens(token):
    with pytest.raises(ValueError):
        FieldCipher(KEY).decrypt(token)


def test_blind_index():
    c = FieldCipher(KEY)
    idx = c.blind_index("420115199601011231", "resident_id")
    assert len(idx) == 64 and int(idx, 16) >= 0
    assert idx == FieldCipher(KEY).blind_index("420115199601011231", "resident_id")
    assert idx != c.blind_index("420115199601011232", "resident_id")
    assert idx != c.blind_index("420115199601011231", "phone")
    assert idx != FieldCipher(OTHER_KEY).blind_index("420115199601011231", "resident_id")
    # a NUL in the purpose would make the purpose/value boundary ambiguous
    with pytest.raises(ValueError):
        c.blind_index("b", "a\x00")


def test_blind_index_matches_spec():
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    sub = HKDF(hashes.SHA256(), 32, None, b"dibao-blind-index-v1").derive(KEY)
    expected = hmac.new(sub, b"resident_id\x00X", hashlib.sha256).hexdigest()
    assert FieldCipher(KEY).blind_index("X", "resident_id") == expected


def test_get_cipher_unconfigured(monkeypatch):
    monkeypatch.setattr(crypto, "_cipher", None)
    with pytest.raises(RuntimeError, match="field cipher not configured"):
        get_cipher()


def test_configure_and_get(cipher):
    assert get_cipher() is cipher
    with pytest.raises(TypeError):
        configure("not a cipher")


def _table():
    metadata = MetaData()
    table = Table(
        "member",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("resident_id", EncryptedString()),
        Column("income", EncryptedDecimal()),
    )
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    return engine, table


def test_sqlalchemy_round_trip_and_raw_ciphertext(cipher):
    engine, table = _table()
    with engine.begin() as conn:
        conn.execute(insert(table), [
            {"id": 1, "resident_id": "420115199601011231", "income": Decimal("1234.50")},
            {"id": 2, "resident_id": None, "income": None},
        ])
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT resident_id, income FROM member WHERE id = 1")).one()
        assert raw.resident_id.startswith("v1:") and raw.income.startswith("v1:")
        assert "420115199601011231" not in raw.resident_id
        assert "1234" not in raw.income
        assert cipher.decrypt(raw.income) == "1234.50"
        raw_null = conn.execute(text("SELECT resident_id, income FROM member WHERE id = 2")).one()
        assert raw_null == (None, None)
        rows = conn.execute(select(table).order_by(table.c.id)).all()
    assert rows[0].resident_id == "420115199601011231"
    assert rows[0].income == Decimal("1234.50")
    assert isinstance(rows[0].income, Decimal) and str(rows[0].income) == "1234.50"
    assert rows[1].resident_id is None and rows[1].income is None


def test_sqlalchemy_rejects_wrong_python_types(cipher):
    engine, table = _table()
    with pytest.raises(Exception) as err:
        with engine.begin() as conn:
            conn.execute(insert(table), {"id": 3, "income": 12.5})
    assert "float" in str(err.value)
    with pytest.raises(Exception) as err:
        with engine.begin() as conn:
            conn.execute(insert(table), {"id": 4, "resident_id": 42})
    assert "int" in str(err.value)


def test_sqlalchemy_without_cipher_fails_loudly(monkeypatch):
    monkeypatch.setattr(crypto, "_cipher", None)
    engine, table = _table()
    with pytest.raises(Exception) as err:
        with engine.begin() as conn:
            conn.execute(insert(table), {"id": 5, "resident_id": "x"})
    assert "field cipher not configured" in str(err.value)
