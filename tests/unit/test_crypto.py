"""shared.crypto and shared.profiles: tokens bound to where they belong, keyrings,
the blind index, and the 国密 primitives' test vectors — under both profiles."""

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared import crypto
from shared.crypto import FieldCipher, Keyring, associated_data, configure, get_cipher, key_from_config, key_id_of
from shared.profiles import GM, INTL, PROFILES, Unsealable, profile_named
from shared.secrets import SECRETS

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture(params=sorted(PROFILES), ids=lambda name: f"profile={name}")
def profile(request):
    return PROFILES[request.param]


def aad(profile, table="member", column="resident_id", row="m-1"):
    return associated_data(profile, table, column, row)


def cipher_of(profile, key=KEY, kid="k1"):
    return FieldCipher(Keyring({kid: key}), profile, index_key=b"i" * 32)


# --- keys and keyrings ----------------------------------------------------------------

def test_key_from_config():
    assert key_from_config(base64.b64encode(KEY).decode()) == KEY


@pytest.mark.parametrize("value", [base64.b64encode(b"x" * 31).decode(), base64.b64encode(b"x" * 33).decode(),
                                   "not base64!!", "", "dev-data-key"])
def test_key_from_config_rejects(value):
    with pytest.raises(ValueError, match="DATA_KEY"):
        key_from_config(value)


def test_a_generated_keyring_parses_and_the_last_key_encrypts():
    text = SECRETS["DATA_KEY_INTAKE"].generate()
    ring = Keyring.parse(text + "\n")
    assert len(ring.keys) == 1 and ring.primary in ring.keys
    grown = ring.with_new_key()
    assert list(grown.keys)[:1] == [ring.primary] and grown.primary != ring.primary
    assert Keyring.parse(grown.render()).keys == grown.keys
    assert grown.without(ring.primary).keys == {grown.primary: grown.keys[grown.primary]}
    with pytest.raises(ValueError, match="encrypts"):
        grown.without(grown.primary)
    legacy = Keyring.generate(legacy=KEY)
    assert list(legacy.keys)[0] == "v1" and legacy.primary != "v1"   # v1 only decrypts


@pytest.mark.parametrize("text, problem", [
    ("", "at least one key"), ("k1", "not <key id>:"), ("K1:" + base64.b64encode(KEY).decode(), "key id"),
    ("k1:" + base64.b64encode(b"x" * 16).decode(), "32 bytes"), ("v1:" + base64.b64encode(KEY).decode(), "besides v1"),
    ("k1:{k} k1:{k}".format(k=base64.b64encode(KEY).decode()), "twice"),
])
def test_malformed_keyrings_are_refused_naming_the_setting_not_the_key(text, problem):
    with pytest.raises(ValueError, match=problem) as err:
        Keyring.parse(text, "DATA_KEY_REVIEW")
    assert "DATA_KEY_REVIEW" in str(err.value) and base64.b64encode(KEY).decode() not in str(err.value)


# --- tokens -------------------------------------------------------------------------

def test_round_trip_and_format(profile):
    c = cipher_of(profile)
    token = c.encrypt("420115199601011231", aad(profile))
    assert token.startswith("v2:k1:") and key_id_of(token) == "k1"
    raw = base64.urlsafe_b64decode(token[len("v2:k1:"):])
    assert len(raw) == 12 + len("420115199601011231") + 16   # nonce + ciphertext + tag
    assert "420115" not in token
    assert c.decrypt(token, aad(profile)) == "420115199601011231"
    assert c.decrypt(c.encrypt("张三 ünï", aad(profile)), aad(profile)) == "张三 ünï"
    assert c.decrypt(c.encrypt("", aad(profile)), aad(profile)) == ""
    assert c.encrypt("same", aad(profile)) != c.encrypt("same", aad(profile))   # a random nonce each time


@pytest.mark.parametrize("elsewhere", [dict(row="m-2"), dict(column="phone"), dict(table="household")])
def test_a_token_opens_only_where_it_was_made(profile, elsewhere):
    c = cipher_of(profile)
    token = c.encrypt("420115199601011231", aad(profile))
    with pytest.raises(Unsealable):
        c.decrypt(token, aad(profile, **elsewhere))


def test_a_token_of_one_profile_does_not_open_under_the_other():
    token = cipher_of(INTL).encrypt("x", aad(INTL))
    with pytest.raises(Unsealable):
        cipher_of(GM).decrypt(token, aad(GM))
    with pytest.raises(Unsealable):
        cipher_of(INTL).decrypt(token, aad(GM))   # the profile is part of what it is bound to


def test_wrong_key_and_tampering(profile):
    token = cipher_of(profile).encrypt("1234.50", aad(profile))
    with pytest.raises(Unsealable):
        cipher_of(profile, OTHER_KEY).decrypt(token, aad(profile))
    raw = bytearray(base64.urlsafe_b64decode(token[6:]))
    raw[-1] ^= 0x01
    with pytest.raises(Unsealable):
        cipher_of(profile).decrypt("v2:k1:" + base64.urlsafe_b64encode(bytes(raw)).decode(), aad(profile))


@pytest.mark.parametrize("token", ["plain text", "v2:AAAA", "v2:k9:" + "A" * 40, "v1:***", "v1:" + "A" * 8,
                                   "v3:k1:AAAA", None])
def test_malformed_tokens(token, profile):
    with pytest.raises(ValueError):
        cipher_of(profile).decrypt(token, aad(profile))


def test_the_subkey_is_not_the_raw_key():
    token = cipher_of(INTL).encrypt("secret", aad(INTL))
    raw = base64.urlsafe_b64decode(token[6:])
    with pytest.raises(Exception):
        AESGCM(KEY).decrypt(raw[:12], raw[12:], aad(INTL))


def test_v1_tokens_of_the_old_shared_key_still_open():
    """What the old code wrote: AES-GCM under HKDF-SHA256(DATA_KEY, dibao-aes-gcm-v1), no associated data."""
    sub = HKDF(hashes.SHA256(), 32, None, b"dibao-aes-gcm-v1").derive(KEY)
    nonce = bytes(12)
    old = "v1:" + base64.urlsafe_b64encode(nonce + AESGCM(sub).encrypt(nonce, b"1234.50", None)).decode()
    ring = Keyring.generate(legacy=KEY)
    for profile in (INTL, GM):
        assert FieldCipher(ring, profile).decrypt(old, aad(profile)) == "1234.50"
    with pytest.raises(ValueError, match="does not have"):
        FieldCipher(ring.without("v1")).decrypt(old, aad(INTL))


def test_decrypts_under_every_key_and_rereads_the_keyring_for_an_unknown_one(profile):
    ring = Keyring.generate()
    files = {"ring": ring}
    running = FieldCipher(ring, profile, source=lambda: files["ring"])
    rotated = ring.with_new_key()
    files["ring"] = rotated                          # `dibao keys rotate` rewrote the file
    rotator = FieldCipher(rotated, profile)
    token = rotator.encrypt("x", aad(profile))
    assert key_id_of(token) == rotated.primary
    assert running.decrypt(token, aad(profile)) == "x"   # read the file again, now has both
    assert running.primary == rotated.primary
    assert running.decrypt(cipher_of(profile, ring.keys[ring.primary], ring.primary).encrypt("y", aad(profile)),
                           aad(profile)) == "y"


def test_configure_per_service(monkeypatch):
    monkeypatch.setattr(crypto, "_ciphers", {})
    with pytest.raises(RuntimeError, match="not configured for intake"):
        get_cipher("intake")
    intake, default = cipher_of(INTL), cipher_of(INTL, OTHER_KEY)
    configure(intake, "intake")
    configure(default)
    assert get_cipher("intake") is intake and get_cipher("review") is default and get_cipher() is default
    with pytest.raises(TypeError):
        configure("not a cipher")


# --- the blind index ----------------------------------------------------------------

def test_blind_index(profile):
    c = cipher_of(profile)
    idx = c.blind_index("420115199601011231", "resident_id")
    assert len(idx) == 64 and int(idx, 16) >= 0
    assert idx == cipher_of(profile).blind_index("420115199601011231", "resident_id")
    assert idx != c.blind_index("420115199601011232", "resident_id")
    assert idx != c.blind_index("420115199601011231", "phone")
    assert idx != FieldCipher(Keyring({"k1": KEY}), profile, index_key=b"j" * 32).blind_index(
        "420115199601011231", "resident_id")
    with pytest.raises(ValueError):
        c.blind_index("b", "a\x00")


def test_blind_index_matches_spec():
    expected = hmac.new(b"i" * 32, b"resident_id\x00X", hashlib.sha256).hexdigest()
    assert cipher_of(INTL).blind_index("X", "resident_id") == expected
    h = __import__("cryptography.hazmat.primitives.hmac", fromlist=["HMAC"]).HMAC(b"i" * 32, hashes.SM3())
    h.update(b"resident_id\x00X")
    assert cipher_of(GM).blind_index("X", "resident_id") == h.finalize().hex()


def test_blind_index_stays_when_the_keyring_rotates_and_matches_the_old_derivation(profile):
    ring = Keyring.generate()
    before = FieldCipher(ring, profile, index_key=b"i" * 32).blind_index("X", "resident_id")
    after = FieldCipher(ring.with_new_key(), profile, index_key=b"i" * 32).blind_index("X", "resident_id")
    assert before == after
    # a deployment of the old shared DATA_KEY keeps its indexes: the carried index key is its old sub-key
    sub = HKDF(hashes.SHA256(), 32, None, b"dibao-blind-index-v1").derive(KEY)
    old = hmac.new(sub, b"resident_id\x00X", hashlib.sha256).hexdigest()
    assert FieldCipher(Keyring.generate(), INTL, index_key=crypto.legacy_index_key(KEY)).blind_index(
        "X", "resident_id") == old
    assert FieldCipher(KEY).blind_index("X", "resident_id") == old


def test_no_index_key_no_blind_index():
    with pytest.raises(RuntimeError, match="BLIND_INDEX_KEY"):
        FieldCipher(Keyring.generate()).blind_index("X", "resident_id")


# --- the 国密 primitives' vectors ----------------------------------------------------

def test_sm3_of_abc():
    assert GM.chain_hash(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert INTL.chain_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_sm4_known_answers():
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    # GB/T 32907-2016 appendix A, example 1: one block
    encryptor = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert (encryptor.update(key) + encryptor.finalize()).hex() == "681edf34d206965e86b3e94f536e4246"
    # RFC 8998 appendix A.1: SM4-GCM, through the profile's AEAD
    nonce = bytes.fromhex("00001234567800000000abcd")
    extra = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
    plain = bytes.fromhex("aa" * 8 + "bb" * 8 + "cc" * 8 + "dd" * 8 + "ee" * 8 + "ff" * 8 + "ee" * 8 + "aa" * 8)
    sealed = GM.aead(key).encrypt(nonce, plain, extra)
    assert sealed[:-16].hex() == ("17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
                                  "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d")
    assert sealed[-16:].hex() == "83de3541e4c2b58177e065a9bf7b62ec"
    assert GM.aead(key).decrypt(nonce, sealed, extra) == plain
    with pytest.raises(Unsealable):
        GM.aead(key).decrypt(nonce, sealed, extra + b"!")


def test_signatures_round_trip_and_fail_with_another_key(profile):
    signer, other = profile.signer(bytes(range(32))), profile.signer(bytes(range(1, 33)))
    signature = signer.sign(b"checkpoint 20")
    assert profile.verify_signature(signer.public_key_text(), signature, b"checkpoint 20")
    assert not profile.verify_signature(other.public_key_text(), signature, b"checkpoint 20")
    assert not profile.verify_signature(signer.public_key_text(), signature, b"checkpoint 19")
    assert not profile.verify_signature(signer.public_key_text(), bytes(64), b"checkpoint 20")
    assert not profile.verify_signature("not base64", signature, b"checkpoint 20")
    assert signer.public_key_text() == profile.signer(bytes(range(32))).public_key_text()   # the seed decides


def test_sm2_public_keys_starting_with_04_or_0_verify():
    """gmssl strips a leading "04" with lstrip (eating any 0s and 4s): not through us."""
    seen = set()
    for n in range(40):
        signer = GM.signer(bytes([n]) * 32)
        point = base64.b64decode(signer.public_key_text()).hex()
        if point[0] in "04":
            seen.add(point[0])
            assert GM.verify_signature(signer.public_key_text(), signer.sign(b"m"), b"m")
        if seen == {"0", "4"}:
            break
    assert seen, "no key starting with 0 or 4 among the seeds tried"


def test_profile_names():
    assert profile_named(None) is INTL and profile_named("") is INTL and profile_named("GM") is GM
    with pytest.raises(ValueError, match="CRYPTO_PROFILE"):
        profile_named("rot13")
