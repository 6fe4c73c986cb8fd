"""shared.secrets: a deployment's secrets are its own — generated or given,
kept, never a value the repository publishes; and the repository holds none.

The old defaults below are deliberately known values (they are what the
refusal is about): each line carries the marker the repository scan accepts.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.config import load_config
from shared.secrets import (IDENTITY_PUBLIC_KEY_FILE, KNOWN_VALUES, SECRETS, SERVICE_NAMES, SecretError,
                            ensure_secrets, is_known, load_secret, require_secrets, required_secrets, secrets_dir,
                            source_of)

ROOT = Path(__file__).resolve().parents[2]
MARK = "secret-scan: known"

OLD_DEFAULTS = {   # what config.yml carried until 2026-12, setting by setting
    "TOKEN_KEY": ["dev-token-key-change-me",  # secret-scan: known
                  "dev-only-token-key-change-me-in-deployment"],  # secret-scan: known
    "DATA_KEY": ["ZGV2LWRhdGEta2V5LWNoYW5nZS1tZS0zMi1ieXRlcyE="],  # secret-scan: known
    "AUDIT_SIGNING_KEY": ["ZGV2LW9ubHktYXVkaXQtc2lnbmluZy1rZXktMzJieSE="],  # secret-scan: known
}


#: the secrets a new deployment gets (not the old shared DATA_KEY)
GENERATED = [setting for setting, spec in SECRETS.items() if spec.generated]


@pytest.fixture
def deployment(tmp_path) -> dict:
    """A configuration whose secrets are all unset (no environment leaks in)."""
    return {"DATA_DIR": str(tmp_path / "data"), **{setting: "" for setting in SECRETS}}


# --- where a secret comes from ----------------------------------------------------

def test_a_set_value_wins_and_is_checked(deployment):
    value = SECRETS["DATA_KEY"].generate()
    deployment["DATA_KEY"] = value + "\n"
    assert load_secret(deployment, "DATA_KEY") == value
    assert source_of(deployment, "DATA_KEY") in ("environment", "config")


def test_an_unset_secret_is_read_from_its_file(deployment):
    ensure_secrets(deployment, ["AUDIT_SIGNING_KEY"])
    path = secrets_dir(deployment) / "audit_signing_key"
    assert load_secret(deployment, "AUDIT_SIGNING_KEY") == path.read_text().strip()
    assert source_of(deployment, "AUDIT_SIGNING_KEY") == "file"


def test_secrets_dir_is_data_dir_secrets_unless_set(deployment, tmp_path):
    assert secrets_dir(deployment) == Path(deployment["DATA_DIR"]) / "secrets"
    assert secrets_dir({**deployment, "SECRETS_DIR": str(tmp_path / "run")}) == tmp_path / "run"


@pytest.mark.parametrize("setting", sorted(SECRETS))
def test_a_missing_secret_is_refused_naming_it(deployment, setting):
    with pytest.raises(SecretError, match=rf"^{setting} is not set: set DIBAO_{setting} or run `dibao secrets init`"):
        load_secret(deployment, setting)


@pytest.mark.parametrize("setting,value", [(s, v) for s, values in OLD_DEFAULTS.items() for v in values])
def test_every_old_default_is_refused_naming_the_setting(deployment, setting, value):
    assert is_known(value) and is_known(f"  {value}\n")
    deployment[setting] = value
    with pytest.raises(SecretError, match=rf"^{setting} is a value published in the repository"):
        load_secret(deployment, setting)
    deployment[setting] = ""   # on file instead: refused the same
    directory = secrets_dir(deployment)
    directory.mkdir(parents=True)
    (directory / setting.lower()).write_text(value + "\n")
    with pytest.raises(SecretError, match=rf"^{setting} is a value published"):
        load_secret(deployment, setting)


@pytest.mark.parametrize("setting,value,why", [
    ("DATA_KEY", "not base64!!", "not valid base64"),
    ("DATA_KEY", base64.b64encode(b"k" * 16).decode(), "exactly 32 bytes"),
    ("AUDIT_SIGNING_KEY", base64.b64encode(b"k" * 33).decode(), "exactly 32 bytes"),
    ("IDENTITY_SIGNING_KEY", "c2hvcnQ=", "exactly 32 bytes"),
    ("SERVICE_SECRET_REVIEW", "review", "too short"),
])
def test_a_malformed_secret_is_refused_naming_it(deployment, setting, value, why):
    deployment[setting] = value
    with pytest.raises(SecretError, match=rf"^{setting} .*{why}"):
        load_secret(deployment, setting)


def test_an_empty_file_is_refused(deployment):
    directory = secrets_dir(deployment)
    directory.mkdir(parents=True)
    (directory / "data_key").write_text("\n")
    with pytest.raises(SecretError, match="^DATA_KEY: .* is empty"):
        load_secret(deployment, "DATA_KEY")


# --- first start: generated, 0600, kept ----------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_start_generates_every_secret_0600_in_a_0700_dir_and_the_second_keeps_them(deployment):
    old_umask = os.umask(0)   # the modes must not depend on the caller's umask
    try:
        made = ensure_secrets(deployment)
    finally:
        os.umask(old_umask)
    assert sorted(made) == sorted(GENERATED)
    directory = secrets_dir(deployment)
    assert mode(directory) == 0o700
    files = {setting: directory / setting.lower() for setting in GENERATED}
    assert all(mode(path) == 0o600 for path in files.values()), {s: oct(mode(p)) for s, p in files.items()}
    first = {setting: load_secret(deployment, setting) for setting in GENERATED}
    assert len(set(first.values())) == len(first), "two secrets have the same value"
    assert not any(is_known(value) for value in first.values())

    assert ensure_secrets(deployment) == []
    assert {setting: load_secret(deployment, setting) for setting in GENERATED} == first
    assert not (directory / "data_key").exists()   # the old shared key: read while it exists, never made


def test_a_kept_file_readable_by_others_is_tightened(deployment):
    ensure_secrets(deployment, ["DATA_KEY_INTAKE"])
    path = secrets_dir(deployment) / "data_key_intake"
    value = path.read_text()
    path.chmod(0o644)
    secrets_dir(deployment).chmod(0o755)
    assert ensure_secrets(deployment, ["DATA_KEY_INTAKE"]) == []
    assert (mode(path), mode(secrets_dir(deployment)), path.read_text()) == (0o600, 0o700, value)


def test_two_deployments_get_different_secrets(tmp_path):
    a = {"DATA_DIR": str(tmp_path / "a")}
    b = {"DATA_DIR": str(tmp_path / "b")}
    ensure_secrets(a), ensure_secrets(b)
    assert all(load_secret(a, s) != load_secret(b, s) for s in GENERATED)


def test_a_secret_given_by_the_environment_is_not_generated(deployment):
    deployment["DATA_KEY"] = SECRETS["DATA_KEY"].generate()
    assert "DATA_KEY" not in ensure_secrets(deployment)
    assert not (secrets_dir(deployment) / "data_key").exists()


def test_the_identity_public_key_is_written_beside_its_seed(deployment):
    ensure_secrets(deployment)
    path = secrets_dir(deployment) / IDENTITY_PUBLIC_KEY_FILE
    assert mode(path) == 0o644
    public = serialization.load_pem_public_key(path.read_bytes())
    seed = base64.b64decode(load_secret(deployment, "IDENTITY_SIGNING_KEY"))
    expected = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    assert public.public_bytes(*raw) == expected.public_bytes(*raw)
    assert b"PRIVATE" not in path.read_bytes()


def test_the_public_key_follows_a_seed_given_by_the_environment(deployment):
    ensure_secrets(deployment)
    path = secrets_dir(deployment) / IDENTITY_PUBLIC_KEY_FILE
    before = path.read_text()
    deployment["IDENTITY_SIGNING_KEY"] = SECRETS["IDENTITY_SIGNING_KEY"].generate()
    ensure_secrets(deployment)
    assert path.read_text() != before   # the file describes the seed in force, not a stale one


# --- who holds which, and the refusal at start ------------------------------------------

def test_who_holds_which_secret():
    assert required_secrets("intake") == ("DATA_KEY_INTAKE", "SERVICE_SECRET_INTAKE", "BLIND_INDEX_KEY_INTAKE")
    assert required_secrets("review") == ("DATA_KEY_REVIEW", "SERVICE_SECRET_REVIEW")
    for name in SERVICE_NAMES:   # each service its own data key, no other's
        others = {f"DATA_KEY_{o.upper()}" for o in SERVICE_NAMES if o != name}
        assert not others & set(required_secrets(name)) and "DATA_KEY" not in required_secrets(name)
    assert required_secrets("audit", encrypts=False) == ("SERVICE_SECRET_AUDIT", "AUDIT_SIGNING_KEY")
    identity = required_secrets("identity")
    assert "IDENTITY_SIGNING_KEY" in identity
    assert {f"SERVICE_SECRET_{n.upper()}" for n in SERVICE_NAMES} <= set(identity)
    holders = {s for n in SERVICE_NAMES if n != "identity" for s in required_secrets(n)}
    assert "IDENTITY_SIGNING_KEY" not in holders, "only identity holds the token signing key"
    for name in SERVICE_NAMES:   # a service holds its own credential and no other service's
        others = {f"SERVICE_SECRET_{o.upper()}" for o in SERVICE_NAMES if o != name}
        assert name == "identity" or not others & set(required_secrets(name))


def test_require_secrets_names_every_problem(deployment):
    deployment["DATA_KEY_INTAKE"] = "k1:" + OLD_DEFAULTS["DATA_KEY"][0]   # the old default, as a keyring
    with pytest.raises(SecretError) as refused:
        require_secrets(deployment, "intake")
    message = str(refused.value)
    assert message.startswith("intake refuses to start: ")
    assert "DATA_KEY_INTAKE is a value published in the repository" in message
    assert "SERVICE_SECRET_INTAKE is not set" in message
    assert OLD_DEFAULTS["DATA_KEY"][0] not in message   # the refusal never repeats a value


# --- the repository ships none -----------------------------------------------------------

def test_config_yml_gives_no_secret_a_default(monkeypatch):
    text = (ROOT / "config.yml").read_text(encoding="utf-8")
    for setting in SECRETS:
        monkeypatch.delenv(f"DIBAO_{setting}", raising=False)
        line = re.search(rf"^{setting}:.*$", text, flags=re.M)
        assert line, f"config.yml has no {setting} setting (a deployment could not set it by the environment)"
        assert re.search(rf"\$\{{DIBAO_{setting}:\}}", line.group()), f"config.yml: {line.group()}"
    monkeypatch.delenv("DIBAO_SECRETS_DIR", raising=False)
    config = load_config()
    assert {setting: config[setting] for setting in SECRETS} == {setting: "" for setting in SECRETS}


def tracked_files() -> list[Path]:
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


# base64 (standard, padded) or base64url (unpadded) of exactly 32 bytes, as a whole word
BASE64_32 = re.compile(r"(?<![A-Za-z0-9+/=_-])([A-Za-z0-9+/]{43}=|[A-Za-z0-9_-]{43})(?![A-Za-z0-9+/=_-])")
PEM_PRIVATE = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
WORD = re.compile(r"[A-Za-z0-9+/=_.-]{8,}")
# Until issue 12's tokens work removes HS256, config.yml keeps TOKEN_KEY's old default (refused by
# load_secret like every other one; nothing that checks secrets accepts it): only that line is let through.
TRANSITIONAL = {("config.yml", "TOKEN_KEY:")}


def looks_random(word: str) -> bool:
    """A 43-character base64url word that is a key, not an identifier: mixed case and digits."""
    return (word.endswith("=") or (any(c.isdigit() for c in word) and any(c.isupper() for c in word)
                                   and any(c.islower() for c in word)))


def findings(path: Path, text: str) -> list[str]:
    relative = path.relative_to(ROOT).as_posix()
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if MARK in line or any(relative == f and line.startswith(p) for f, p in TRANSITIONAL):
            continue
        where = f"{relative}:{number}"
        if PEM_PRIVATE.search(line):
            found.append(f"{where}: a PEM private key")
        for match in BASE64_32.finditer(line):
            word = match.group(1)
            if looks_random(word):
                found.append(f"{where}: base64 of 32 bytes ({word[:6]}…)")
        for word in WORD.findall(line):
            if is_known(word) or is_known(word.strip("'\".,:;{}")):
                found.append(f"{where}: a value the repository published ({word[:6]}…)")
    return found


def test_the_scan_finds_what_it_looks_for():
    key = base64.b64encode(os.urandom(32)).decode()
    url = ""
    while not looks_random(url):
        url = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    pem = "-----BEGIN " + "PRIVATE KEY-----"
    text = (f"DATA_KEY: ${{DIBAO_DATA_KEY:{key}}}\nX: '{url}'\n{pem}\n"
            f"A: {OLD_DEFAULTS['TOKEN_KEY'][1]}\n"
            f"ok: {key}  # {MARK} (a test's value)\nname: test_a_function_name_that_is_43_characters\n")
    found = findings(ROOT / "sample.yml", text)
    assert [f.split(":")[1] for f in found] == ["1", "2", "3", "4"], found
    assert "PEM private key" in found[2] and "published" in found[3]
    assert key not in " ".join(found) and url not in " ".join(found)


def test_no_tracked_file_holds_a_key_or_a_published_secret():
    found = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue   # binary (fonts, spreadsheets)
        found += findings(path, text)
    assert not found, ("the repository must ship no secret (mark a test's deliberately known value with "
                       f"`# {MARK}`):\n" + "\n".join(found))


SECRET_DEFAULT = re.compile(r"^\+\s*([A-Z_]+):.*\$\{DIBAO_([A-Z_]+):-?([^}]*)\}")


def test_every_secret_default_in_the_history_is_refused():
    """An insider's first try: the defaults config.yml and compose ever carried."""
    tracked_files()   # skips outside a checkout
    log = subprocess.run(["git", "log", "--format=", "-p", "--", "config.yml", "docker-compose.yml"], cwd=ROOT,
                         capture_output=True, text=True)
    if log.returncode != 0 or not log.stdout:
        pytest.skip("no history here (a shallow or exported copy)")
    defaults = set()
    for line in log.stdout.splitlines():
        match = SECRET_DEFAULT.match(line)
        if match and (match.group(2) in SECRETS or match.group(2) == "TOKEN_KEY") and match.group(3):
            if not match.group(3).startswith("?"):   # compose's "required" form: an error text, no default
                defaults.add((match.group(2), match.group(3)))
    assert {name for name, _ in defaults} >= {"TOKEN_KEY", "DATA_KEY", "AUDIT_SIGNING_KEY"}
    unrefused = sorted(name for name, value in defaults if not is_known(value))
    assert not unrefused, f"defaults in the history that load_secret would accept: {unrefused}"
    assert len(KNOWN_VALUES) >= len({value for _, value in defaults})


def test_replicas_generating_at_once_agree_on_one_value_each(tmp_path):
    """Processes sharing a secrets directory on their first start: none fails,
    each secret is generated once, and every process reads the same values."""
    import json
    import subprocess
    import sys

    from shared import secrets

    config = {"DATA_DIR": str(tmp_path), "SECRETS_DIR": str(tmp_path / "secrets")}
    script = ("import json, sys; from shared import secrets; c = json.loads(sys.argv[1]); "
              "made = secrets.ensure_secrets(c); "
              "print(json.dumps([made, {s: secrets.load_secret(c, s) for s in secrets.SECRETS "
              "if secrets.SECRETS[s].generated}]))")
    procs = [subprocess.Popen([sys.executable, "-c", script, json.dumps(config)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    generated = [name for made, _ in results for name in made]
    assert sorted(generated) == sorted(GENERATED)                 # each generated exactly once
    assert all(values == results[0][1] for _, values in results)  # all read the same
    assert not [p for p in (tmp_path / "secrets").iterdir() if p.name.startswith(".")]


# --- the old shared DATA_KEY, carried ------------------------------------------------------

def test_a_deployment_with_the_old_data_key_keeps_reading_and_finding(deployment):
    """Its keyrings begin with the old key as v1; intake's index key is the one it implied."""
    from shared.crypto import Keyring, legacy_index_key

    old = SECRETS["DATA_KEY"].generate()
    directory = secrets_dir(deployment)
    directory.mkdir(parents=True)
    (directory / "data_key").write_text(old + "\n")
    made = ensure_secrets(deployment)
    assert "DATA_KEY" not in made and "DATA_KEY_REVIEW" in made
    for name in ("intake", "review", "payments", "notify", "identity"):
        ring = Keyring.parse(load_secret(deployment, f"DATA_KEY_{name.upper()}"))
        assert ring.keys["v1"] == base64.b64decode(old) and ring.primary != "v1"
    assert base64.b64decode(load_secret(deployment, "BLIND_INDEX_KEY_INTAKE")) == legacy_index_key(base64.b64decode(old))


def test_a_published_key_inside_a_keyring_is_refused(deployment):
    from shared.crypto import Keyring

    deployment["DATA_KEY_PAYMENTS"] = Keyring.generate().render() + "\nold:" + OLD_DEFAULTS["DATA_KEY"][0]
    with pytest.raises(SecretError, match="DATA_KEY_PAYMENTS is a value published"):
        load_secret(deployment, "DATA_KEY_PAYMENTS")


def test_a_keyring_given_by_the_environment_is_not_rewritten(deployment):
    from shared.crypto import Keyring
    from shared.secrets import replace_secret

    ensure_secrets(deployment, ["DATA_KEY_REVIEW"])
    grown = Keyring.parse(load_secret(deployment, "DATA_KEY_REVIEW")).with_new_key().render()
    path = replace_secret(deployment, "DATA_KEY_REVIEW", grown)           # the file: rewritten whole, 0600
    assert path.read_text().strip() == grown and mode(path) == 0o600
    deployment["DATA_KEY_REVIEW"] = grown
    with pytest.raises(SecretError, match="set by the (environment|config).*DIBAO_DATA_KEY_REVIEW"):
        replace_secret(deployment, "DATA_KEY_REVIEW", Keyring.generate().render())
    with pytest.raises(SecretError, match="DATA_KEY_INTAKE"):
        replace_secret(dict(deployment, DATA_KEY_INTAKE=""), "DATA_KEY_INTAKE", "not a keyring")
