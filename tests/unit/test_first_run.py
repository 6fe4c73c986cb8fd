"""`make run` on a fresh machine installs what the services need at run time:
the Makefile's one DEB_PACKAGES list serves both `run` and `test`, and every
file path a service reads at run time (config.yml) comes from the repository
or from a package of that list (`dibao doctor` checks it after the install)."""
from __future__ import annotations

import re
import shutil
import subprocess

import yaml
from typer.testing import CliRunner

from cli.doctor import RUNTIME_PATHS, check
from cli.root import app
from shared.config import REPO_ROOT, load_config

MAKEFILE = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")


def prerequisites(target: str) -> list[str]:
    [line] = [l for l in MAKEFILE.splitlines() if re.match(rf"^{target}:", l)]
    return line.split(":", 1)[1].split("##")[0].split()


def deb_packages(variable: str = "DEB_PACKAGES") -> list[str]:
    [line] = [l for l in MAKEFILE.splitlines() if l.startswith(f"{variable} ")]
    return line.split(":=", 1)[1].split()


def test_run_installs_the_same_debian_packages_as_test_and_checks_them():
    assert "sysdeps" in prerequisites("run") and "venv" in prerequisites("run")
    assert "sysdeps" in prerequisites("test")
    assert len([l for l in MAKEFILE.splitlines() if l.startswith("DEB_PACKAGES ")]) == 1
    run_recipe = MAKEFILE.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert run_recipe.index("dibao doctor") < run_recipe.index("dibao up")
    assert "$(DEB_PACKAGES)" in MAKEFILE.split("\nsysdeps:", 1)[1].split("\n\n", 1)[0]


def test_every_run_time_path_in_config_is_covered_by_the_repo_or_deb_packages():
    raw = yaml.safe_load((REPO_ROOT / "config.yml").read_text(encoding="utf-8").replace("!raw_env_var", ""))
    path_keys = {k for k in raw if k.endswith(("_FILE", "_FONT"))}
    assert path_keys <= set(RUNTIME_PATHS), f"add {path_keys - set(RUNTIME_PATHS)} to cli/doctor.py"
    config = load_config()
    for key, (provider, _, optional) in RUNTIME_PATHS.items():
        path = config[key]
        if provider == "repo":
            assert (REPO_ROOT / path).is_file() or optional, f"{key}: {path} is not in the repository"
        else:
            assert provider in deb_packages(), f"{key}: {provider} is not in the Makefile's DEB_PACKAGES"
            if shutil.which("dpkg-query") and subprocess.run(["dpkg-query", "-W", provider],
                                                              capture_output=True).returncode == 0:
                files = subprocess.run(["dpkg-query", "-L", provider], capture_output=True, text=True).stdout
                assert path in files.split("\n"), f"{key}: {path} is not a file of {provider}"


def test_doctor_names_what_is_missing_and_how_to_install_it(tmp_path):
    config = dict(load_config(), NOTICE_FONT=str(tmp_path / "no-font.ttc"), DATA_DIR=str(tmp_path / "var"))
    rows = {r["key"]: r for r in check(config)}
    assert not rows["NOTICE_FONT"]["ok"] and rows["DIVISIONS_FILE"]["ok"] and rows["DATA_DIR"]["ok"]
    path = tmp_path / "dibao.yml"
    config.pop("LOGGING", None)
    path.write_text(yaml.safe_dump({k: v for k, v in config.items()}, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(path), "doctor"])
    assert result.exit_code == 1
    assert "MISSING" in result.output and "apt-get install" in result.output and "fonts-wqy-zenhei" in result.output


def test_the_service_image_installs_the_same_debian_packages():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    installs = " ".join(l for l in dockerfile.splitlines() if "apt-get install" in l).split()
    test_only = deb_packages("DEB_TEST_ONLY")
    assert set(test_only) <= set(deb_packages()), "DEB_TEST_ONLY names packages that DEB_PACKAGES does not list"
    for package in deb_packages():
        if package in test_only:   # the browser the console's tests drive: not in the service image
            assert package not in installs, f"the Dockerfile installs {package}, which only the tests use"
        else:
            assert package in installs, f"the Dockerfile does not install {package} (DEB_PACKAGES)"
