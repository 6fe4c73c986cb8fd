"""Every service refuses to start on a secret the repository published, or
without one it holds — naming the setting, before it touches its database;
``dibao up`` generates a deployment's secrets on its first start and keeps
them; ``dibao secrets`` never shows a value.

The old defaults here are deliberately known values (the marker lets the
repository scan accept them)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from services.audit.service import AuditService
from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.payments.service import PaymentsService
from services.review.service import ReviewService
from cli import app
from shared.db import encrypts
from shared.secrets import ENCRYPTING_SERVICES, SECRETS, SecretError, load_secret, required_secrets, secrets_dir

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
OLD_DATA_KEY = "ZGV2LWRhdGEta2V5LWNoYW5nZS1tZS0zMi1ieXRlcyE="  # secret-scan: known (the old default)
OLD_AUDIT_SIGNING_KEY = "ZGV2LW9ubHktYXVkaXQtc2lnbmluZy1rZXktMzJieSE="  # secret-scan: known (the old default)
PUBLISHED = {"AUDIT_SIGNING_KEY": OLD_AUDIT_SIGNING_KEY, "BLIND_INDEX_KEY_INTAKE": OLD_DATA_KEY,
             **{f"DATA_KEY_{name.upper()}": f"k1:{OLD_DATA_KEY}" for name in ENCRYPTING_SERVICES}}   # as a keyring
SERVICES = {"intake": IntakeService, "review": ReviewService, "payments": PaymentsService,
            "audit": AuditService, "notify": NotifyService}
runner = CliRunner()
#: what a new deployment gets generated (not the old shared DATA_KEY)
GENERATED = [setting for setting, spec in SECRETS.items() if spec.generated]


def held(name: str) -> tuple[str, ...]:
    return required_secrets(name, encrypts(SERVICES[name].db.metadata))


CASES = [(name, setting, how) for name in SERVICES for setting in held(name)
         for how in (("published", "missing") if setting in PUBLISHED else ("missing",))]


def test_what_each_service_holds():
    assert {name: held(name) for name in SERVICES} == {
        "intake": ("DATA_KEY_INTAKE", "SERVICE_SECRET_INTAKE", "BLIND_INDEX_KEY_INTAKE"),
        "review": ("DATA_KEY_REVIEW", "SERVICE_SECRET_REVIEW"),
        "payments": ("DATA_KEY_PAYMENTS", "SERVICE_SECRET_PAYMENTS"),
        "audit": ("SERVICE_SECRET_AUDIT", "AUDIT_SIGNING_KEY"),   # audit stores nothing encrypted
        "notify": ("DATA_KEY_NOTIFY", "SERVICE_SECRET_NOTIFY"),
    }


@pytest.mark.parametrize("name,setting,how", CASES, ids=[f"{n}-{s}-{h}" for n, s, h in CASES])
def test_a_service_refuses_to_start_naming_the_setting(container_factory, sqlite_config, name, setting, how):
    config = dict(sqlite_config)
    if how == "published":
        config[setting] = PUBLISHED[setting]
    else:
        (secrets_dir(config) / setting.lower()).unlink()
    container = container_factory(SERVICES[name], config)
    with pytest.raises(SecretError) as refused:
        container.start()
    message = str(refused.value)
    assert message.startswith(f"{name} refuses to start: {setting} ")
    assert ("published in the repository" if how == "published" else "is not set") in message
    assert OLD_DATA_KEY not in message and OLD_AUDIT_SIGNING_KEY not in message
    db_file = Path(config["DB_URIS"][name].removeprefix("sqlite:///"))
    assert not db_file.exists(), "it touched its database before refusing"


def test_the_generated_secrets_start_every_service(container_factory, sqlite_config):
    for cls in SERVICES.values():
        container_factory(cls, sqlite_config).start()


# --- a container's start: `nameko run` and `dibao secrets check` ---------------------

def environment(config: dict, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIBAO_")}
    env.update({"DIBAO_AMQP_URI": config["AMQP_URI"], "DIBAO_DATA_DIR": config["DATA_DIR"],
                **{f"DIBAO_{name.upper()}_DB_URI": uri for name, uri in
                   ((n, config["DB_URIS"][n]) for n in SERVICES)}, **extra})
    return env


def test_nameko_run_with_the_old_data_key_exits_naming_it(sqlite_config):
    """What `docker compose up` does with DIBAO_DATA_KEY set to the old default."""
    env = environment(sqlite_config, DIBAO_DATA_KEY=OLD_DATA_KEY, DIBAO_LOG_LEVEL="ERROR")
    done = subprocess.run([str(Path(sys.executable).parent / "nameko"), "run", "--config", "config.yml",
                           "services.intake.service"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "intake refuses to start: DATA_KEY is a value published in the repository" in done.stderr
    assert not Path(sqlite_config["DB_URIS"]["intake"].removeprefix("sqlite:///")).exists()


def write_config(path: Path, config: dict) -> str:
    path.write_text(yaml.safe_dump(json.loads(json.dumps(config)), allow_unicode=True), encoding="utf-8")
    return str(path)


def test_secrets_check_refuses_in_one_line_naming_each_setting(sqlite_config, tmp_path):
    (secrets_dir(sqlite_config) / "service_secret_audit").unlink()
    config_file = write_config(tmp_path / "dibao.yml", dict(sqlite_config, DATA_KEY=OLD_DATA_KEY))
    result = runner.invoke(app, ["--config", config_file, "secrets", "check", "intake", "audit"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert "intake: DATA_KEY is a value published in the repository" in result.output
    assert "audit: SERVICE_SECRET_AUDIT is not set" in result.output
    good = write_config(tmp_path / "good.yml", sqlite_config)
    assert runner.invoke(app, ["--config", good, "secrets", "check", "intake", "review"]).exit_code == 0


# --- dibao secrets init / list -------------------------------------------------------

def test_secrets_init_then_list_shows_sources_never_values(tmp_path, monkeypatch):
    data = tmp_path / "deployment"
    config_file = write_config(tmp_path / "dibao.yml", {"DATA_DIR": str(data), "AMQP_URI": "memory://"})
    given = SECRETS["AUDIT_SIGNING_KEY"].generate()
    result = runner.invoke(app, ["--config", config_file, "secrets", "init"])
    assert result.exit_code == 0, result.output
    assert "DATA_KEY_INTAKE: generated" in result.output and f"{len(GENERATED)} generated" in result.output
    assert "DATA_KEY: none" in result.output   # the old shared key: not made for a new deployment
    config = {"DATA_DIR": str(data)}
    values = {setting: load_secret(config, setting) for setting in GENERATED}

    again = runner.invoke(app, ["--config", config_file, "secrets", "init"])
    assert "DATA_KEY_INTAKE: kept (on file)" in again.output and "0 generated" in again.output
    assert {setting: load_secret(config, setting) for setting in GENERATED} == values

    with_env = write_config(tmp_path / "env.yml", {"DATA_DIR": str(data), "AUDIT_SIGNING_KEY": given})
    monkeypatch.setenv("DIBAO_AUDIT_SIGNING_KEY", given)
    listing = runner.invoke(app, ["--config", with_env, "secrets", "list"])
    assert listing.exit_code == 0, listing.output
    lines = {line.split()[0]: line for line in listing.output.splitlines() if line.split()[:1]
             and line.split()[0] in SECRETS}
    assert "environment DIBAO_AUDIT_SIGNING_KEY" in lines["AUDIT_SIGNING_KEY"]
    assert "file data_key_intake" in lines["DATA_KEY_INTAKE"] and "ok" in lines["DATA_KEY_INTAKE"]
    assert "intake" in lines["DATA_KEY_INTAKE"] and "review" not in lines["DATA_KEY_INTAKE"]
    assert "review" in lines["DATA_KEY_REVIEW"] and "audit" not in lines["DATA_KEY_REVIEW"]
    for value in [given, *values.values()]:
        assert value not in listing.output and value not in result.output and value not in again.output


def test_secrets_init_dir_writes_docker_secrets_files(tmp_path):
    config_file = write_config(tmp_path / "dibao.yml", {"DATA_DIR": str(tmp_path / "data"),
                                                        "DATA_KEY": SECRETS["DATA_KEY"].generate()})
    out = tmp_path / "compose-secrets"
    result = runner.invoke(app, ["--config", config_file, "secrets", "init", "--dir", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {s.lower() for s in GENERATED} | {"identity_public_key"}
    assert not (tmp_path / "data" / "secrets").exists()


def test_secrets_list_marks_a_published_value_refused(tmp_path):
    config_file = write_config(tmp_path / "dibao.yml", {"DATA_DIR": str(tmp_path), "DATA_KEY": OLD_DATA_KEY})
    listing = runner.invoke(app, ["--config", config_file, "secrets", "list"])
    line = next(line for line in listing.output.splitlines() if line.strip().startswith("DATA_KEY"))
    assert "refused" in line and OLD_DATA_KEY not in listing.output


# --- dibao up: first start generates, second start reuses ------------------------------

def start_up(env: dict, cwd: Path) -> tuple[int, str]:
    """`dibao up --services audit` until it says running, then SIGTERM: (exit code, output)."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "dibao"), "up", "--services", "audit"],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    output = []
    deadline = time.monotonic() + 120
    try:
        for line in process.stdout:
            output.append(line)
            if "running" in line or time.monotonic() > deadline:
                break
        os.kill(process.pid, signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        output.append(rest)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, "".join(output)


def test_dibao_up_generates_the_secrets_on_first_start_and_reuses_them(sqlite_config, tmp_path):
    data = tmp_path / "up"
    # the test vhost has no per-service broker users (tests/integration/test_bus_boundary.py covers those)
    env = environment(sqlite_config, DIBAO_DATA_DIR=str(data), DIBAO_LOG_LEVEL="ERROR",
                      DIBAO_CONFIG=str(ROOT / "config.yml"), DIBAO_BROKER_SERVICE_USERS="false")
    code, first = start_up(env, tmp_path)
    assert "running" in first, first
    assert "generated this deployment's secrets" in first
    directory = data / "secrets"
    assert oct(directory.stat().st_mode & 0o777) == "0o700"
    files = {path.name: path.read_text() for path in directory.iterdir()}
    assert set(files) == {s.lower() for s in GENERATED} | {"identity_public_key"}
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in directory.iterdir()
               if path.name != "identity_public_key")
    assert not any(value.strip() in first for value in files.values() if "PUBLIC" not in value)

    code, second = start_up(env, tmp_path)
    assert "running" in second, second
    assert "generated" not in second
    assert {path.name: path.read_text() for path in directory.iterdir()} == files

    refused = subprocess.run([str(Path(sys.executable).parent / "dibao"), "up", "--services", "audit"], cwd=tmp_path,
                             env=dict(env, DIBAO_AUDIT_SIGNING_KEY=OLD_AUDIT_SIGNING_KEY), capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1
    assert "audit: AUDIT_SIGNING_KEY is a value published in the repository" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
