"""docker-compose.yml is consistent with the code and config.yml.

Plain pytest, no broker and no Docker engine: the compose file is read with
PyYAML and checked against the repository, so a renamed module, an unknown
environment variable, a missing database or a healthcheck that nothing
provides fails here rather than at deploy time.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONFIG_FILE = ROOT / "config.yml"
SERVICES_DIR = ROOT / "services"
INIT_MOUNT_DIR = "/docker-entrypoint-initdb.d"

# The intake service is being written while this test is; until its
# services/intake/service.py exists, the checks that need it skip. Any other
# missing module or service folder fails.
PENDING = {"intake"}

# `nameko run` options that take a value (nameko 2.14: nameko/cli/commands.py).
NAMEKO_RUN_VALUE_OPTIONS = {"--config", "--broker", "--backdoor-port"}
SEPARATORS = {"&&", "||", ";", "|", "&"}


# --- reading the files -------------------------------------------------------


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    # SafeLoader understands the `<<: *anchor` merge keys used in the file. Without the
    # implicit `${...}` resolver nameko adds to SafeLoader once any config was loaded
    # (setup_yaml_parser): compose's own `${VAR:?error}` / `${VAR:-}` must stay as written.
    loader = type("ComposeLoader", (yaml.SafeLoader,), {})
    loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag != "!env_var"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def config_env_vars(path: Path = CONFIG_FILE) -> set[str]:
    """Names of the environment variables config.yml reads (`${NAME:default}`)."""
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", path.read_text(encoding="utf-8")))


def config_db_services(path: Path = CONFIG_FILE) -> set[str]:
    """The services that config.yml gives a database (keys of DB_URIS)."""
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()  # config.yml's !env_var / !raw_env_var tags
    return set(yaml.safe_load(path.read_text(encoding="utf-8"))["DB_URIS"])


def environment(service: dict) -> dict[str, str]:
    """A compose service's environment, whether written as a map or a list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, None) for item in env)
        return {key: value for key, value in pairs}
    return {str(key): (None if value is None else str(value)) for key, value in env.items()}


def shell_words(command) -> list[str]:
    """All words of a compose command, `sh -c "..."` scripts split as well."""
    if command is None:
        return []
    if isinstance(command, str):
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    else:
        words = [str(word) for word in command]
    if isinstance(command, str) and words == [command]:
        return words  # nothing left to split
    result: list[str] = []
    for word in words:
        result.extend(shell_words(word))
    return result


def nameko_run_targets(command) -> list[str]:
    """The `module[:Class]` arguments of every `nameko run` in a command."""
    words = shell_words(command)
    targets: list[str] = []
    i = 0
    while i < len(words) - 1:
        if words[i] == "nameko" and words[i + 1] == "run":
            i += 2
            while i < len(words) and words[i] not in SEPARATORS:
                word = words[i]
                if word in NAMEKO_RUN_VALUE_OPTIONS:
                    i += 2
                    continue
                if not word.startswith("-"):
                    targets.append(word)
                i += 1
        else:
            i += 1
    return targets


def dibao_cli_targets(command, subcommand: str) -> list[str]:
    """The service names given to `dibao <subcommand> NAME` in a command."""
    words = shell_words(command)
    return [
        words[i + 2]
        for i in range(len(words) - 2)
        if words[i] == "dibao" and words[i + 1] == subcommand
    ]


def healthcheck_commands(service: dict) -> list:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL"):
        return [test[1:] if test[0] == "CMD" else test[1]]
    return [test] if test else []


def dibao_containers(compose: dict) -> dict[str, dict]:
    """Compose services that run a Dibao service (their command runs `nameko run`)."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if nameko_run_targets(svc.get("command"))
    }


def is_pending(service_name: str) -> bool:
    return service_name in PENDING and not (SERVICES_DIR / service_name / "service.py").exists()


def nameko_service_classes(module) -> list[type]:
    """What `nameko run module` would run: top-level classes with entrypoints."""
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    def has_entrypoint(member) -> bool:
        return hasattr(member, ENTRYPOINT_EXTENSIONS_ATTR)

    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if inspect.getmembers(cls, has_entrypoint)
    ]


def created_databases(sql: str) -> set[str]:
    sql = re.sub(r"--[^\n]*", "", sql)
    return {
        name.strip('"')
        for name in re.findall(r'\bCREATE\s+DATABASE\s+("[^"]+"|\w+)', sql, flags=re.IGNORECASE)
    }


def strip_interpolation(value: str) -> str:
    """Replace compose `${VAR...}` interpolations by a placeholder."""
    return re.sub(r"\$\{[^}]*\}", "x", value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def containers(compose) -> dict[str, dict]:
    found = dibao_containers(compose)
    assert found, "docker-compose.yml runs no Dibao service (no `nameko run` command)"
    return found


# --- the helpers themselves (so a parser bug can't make the checks vacuous) --


def test_command_parsing():
    command = ["sh", "-c", "dibao migrate intake && exec nameko run --config config.yml services.intake.service"]
    assert nameko_run_targets(command) == ["services.intake.service"]
    assert dibao_cli_targets(command, "migrate") == ["intake"]
    as_string = 'sh -c "dibao migrate review&&nameko run --broker amqp://x services.review.service:ReviewService"'
    assert nameko_run_targets(as_string) == ["services.review.service:ReviewService"]
    assert dibao_cli_targets(as_string, "migrate") == ["review"]
    assert dibao_cli_targets(["dibao", "health", "audit"], "health") == ["audit"]
    assert environment({"environment": ["A=1", "B"]}) == {"A": "1", "B": None}
    assert created_databases('-- CREATE DATABASE nope;\ncreate database "a";\nCREATE DATABASE b;') == {"a", "b"}


# --- (a) every `nameko run` module exists and holds the service it names -----


def test_nameko_run_modules_define_the_service(containers):
    pending = []
    for name, svc in containers.items():
        for target in nameko_run_targets(svc.get("command")):
            module_name, _, class_name = target.partition(":")
            if is_pending(name) and module_name == f"services.{name}.service":
                pending.append(name)
                continue
            if str(ROOT) not in sys.path:  # nameko run puts the working dir on sys.path
                sys.path.insert(0, str(ROOT))
            assert importlib.util.find_spec(module_name) is not None, (
                f"compose service {name!r} runs `nameko run {target}`, but no module "
                f"{module_name!r} can be imported"
            )
            module = importlib.import_module(module_name)
            classes = nameko_service_classes(module)
            if class_name:
                classes = [cls for cls in classes if cls.__name__ == class_name]
            assert classes, f"{module_name} defines no nameko service class{' ' + class_name if class_name else ''}"
            names = sorted(str(getattr(cls, "name", None)) for cls in classes)
            assert name in names, (
                f"compose service {name!r} runs {target}, whose nameko service(s) are named {names}: "
                f"the container must be named after the service it runs"
            )
    if pending:
        pytest.skip(", ".join(f"services/{n}/service.py" for n in sorted(set(pending))) + " not written yet")


# --- (b) every DIBAO_* variable the compose file sets is read by config.yml ---


def test_environment_only_uses_variables_config_reads(compose):
    known = config_env_vars()
    assert "DIBAO_AMQP_URI" in known, "config.yml parsing found no ${DIBAO_...} variables"
    unknown = {
        f"{name}: {key}"
        for name, svc in compose["services"].items()
        for key in environment(svc)
        if key.startswith("DIBAO_") and key not in known
    }
    assert not unknown, f"set in docker-compose.yml but never read by config.yml: {sorted(unknown)}"


def has_database(name: str) -> bool:
    """A service keeps a database when it has models (the gateway has none: it calls the others)."""
    return (SERVICES_DIR / name / "models.py").is_file() or is_pending(name)


def test_dibao_containers_set_broker_secrets_and_their_database(containers):
    for name, svc in containers.items():
        env = environment(svc)
        required = {"DIBAO_AMQP_URI", "DIBAO_DATA_DIR", "DIBAO_SECRETS_DIR"}
        if has_database(name):
            required.add(f"DIBAO_{name.upper()}_DB_URI")
        else:
            assert not any(k.endswith("_DB_URI") for k in env), f"{name} keeps no database but is given one"
        missing = required - env.keys()
        assert not missing, f"compose service {name!r} lacks {sorted(missing)} (it would use the laptop defaults)"


# --- (b2) each container holds exactly its own secrets, none with a default ---


def held_secrets(name: str) -> tuple[str, ...]:
    """What shared.secrets says the service holds (its DATA_KEY_<SERVICE> only if it stores encrypted columns)."""
    from shared.db import encrypts
    from shared.secrets import required_secrets

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if not has_database(name):
        return required_secrets(name, encrypts=False)
    models = importlib.import_module(f"services.{name}.models")
    return required_secrets(name, encrypts(models.Base.metadata))


def is_secret_variable(key: str) -> bool:
    """DIBAO_<a secret of shared.secrets> (or the HS256 TOKEN_KEY, which no container may get any more)."""
    from shared.secrets import SECRETS

    return key.startswith("DIBAO_") and (key.removeprefix("DIBAO_") in SECRETS or key == "DIBAO_TOKEN_KEY")


OVERRIDE_FILE = ROOT / "docker-compose.secrets.yml"


def test_each_container_holds_exactly_its_secrets_and_none_has_a_default(containers):
    checked = 0
    for name, svc in containers.items():
        if is_pending(name):
            continue
        env = environment(svc)
        given = {key.removeprefix("DIBAO_") for key in env if is_secret_variable(key)}
        assert given == set(held_secrets(name)), (
            f"{name}: the environment passes {sorted(given)}, but {name} holds {sorted(held_secrets(name))} "
            f"(docs/security.md): no container gets a secret it does not hold, none lacks one")
        for setting in given:
            value = env[f"DIBAO_{setting}"]
            assert value in (f"${{DIBAO_{setting}:-}}", f"${{DIBAO_{setting}}}"), (
                f"{name}: DIBAO_{setting} is {value!r}: a secret comes from .env or Docker secrets, never a default")
        checked += 1
    assert checked, "no Dibao container checked"


def test_no_password_or_key_has_a_default_in_compose():
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    with_default = sorted({m.group(0) for m in re.finditer(r"\$\{([A-Z_]*(PASSWORD|KEY|SECRET)[A-Z_]*):?-([^}]+)\}", text)})
    assert not with_default, f"docker-compose.yml ships a default secret: {with_default}"


def test_every_container_checks_its_secrets_before_it_migrates(containers):
    for name, svc in containers.items():
        words = shell_words(svc.get("command"))
        first = words.index("dibao") if "dibao" in words else len(words)
        assert words[first:first + 4] == ["dibao", "secrets", "check", name], (
            f"{name}: command should start with `dibao secrets check {name}` (a one-line refusal naming the setting)")


def test_docker_secrets_override_gives_each_container_its_own_files(containers):
    override = load_compose(OVERRIDE_FILE)
    assert set(override["services"]) == set(containers), "docker-compose.secrets.yml must cover every container"
    files = override["secrets"]
    for name, svc in override["services"].items():
        if is_pending(name):
            continue
        assert sorted(svc["secrets"]) == sorted(s.lower() for s in held_secrets(name)), name
        assert set(svc) == {"secrets"}, f"{name}: the override changes only the secrets"
    used = {secret for svc in override["services"].values() for secret in svc["secrets"]}
    assert set(files) == used, "a Docker secret that no container uses, or one not declared"
    for secret, spec in files.items():
        assert spec == {"file": f"./secrets/{secret}"}, secret


def test_secrets_stay_out_of_git_and_out_of_the_image():
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    gitignore = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in dockerignore and "secrets" in dockerignore, "`COPY . .` would bake .env or secrets/ into the image"
    assert ".env" in gitignore and "/secrets/" in gitignore


# --- (c) `dibao migrate X` / `dibao health X` name real services -------------


def test_dibao_cli_names_existing_services(compose):
    pending, seen = [], 0
    for name, svc in compose["services"].items():
        commands = [svc.get("command")] + healthcheck_commands(svc)
        for sub in ("migrate", "health"):
            for target in (t for cmd in commands for t in dibao_cli_targets(cmd, sub)):
                seen += 1
                folder = SERVICES_DIR / target
                assert folder.is_dir(), f"{name}: `dibao {sub} {target}`: no folder services/{target}/"
                if is_pending(target):
                    pending.append(target)
                    continue
                assert (folder / "service.py").is_file(), (
                    f"{name}: `dibao {sub} {target}`: services/{target}/ has no service.py"
                )
    assert seen, "no `dibao migrate`/`dibao health` found in docker-compose.yml"
    if pending:
        pytest.skip(", ".join(f"services/{n}/service.py" for n in sorted(set(pending))) + " not written yet")


def http_entrypoint_urls(name: str) -> set[str]:
    """The URLs of the service's @http entrypoints (nameko's HttpRequestHandler)."""
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.web.handlers import HttpRequestHandler

    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    module = importlib.import_module(f"services.{name}.service")
    return {ext.url for cls in nameko_service_classes(module) for _, member in inspect.getmembers(cls)
            for ext in getattr(member, ENTRYPOINT_EXTENSIONS_ATTR, ()) if isinstance(ext, HttpRequestHandler)}


def test_every_dibao_container_migrates_and_has_a_healthcheck(containers):
    for name, svc in containers.items():
        if not has_database(name):
            # no database to migrate; its health is its own HTTP /healthz, fetched inside the container
            assert name not in dibao_cli_targets(svc.get("command"), "migrate"), f"{name} has nothing to migrate"
            [check] = healthcheck_commands(svc)
            assert "/healthz" in " ".join(map(str, check)) and "/healthz" in http_entrypoint_urls(name), (
                f"{name}: the healthcheck should fetch /healthz, which {name} serves")
            continue
        assert name in dibao_cli_targets(svc.get("command"), "migrate"), (
            f"{name}: command should run `dibao migrate {name}` before `nameko run`"
        )
        health = [t for cmd in healthcheck_commands(svc) for t in dibao_cli_targets(cmd, "health")]
        assert health == [name], f"{name}: healthcheck should be `dibao health {name}`, is {health}"


def test_every_dibao_container_connects_as_its_own_broker_user(containers):
    """DIBAO_AMQP_URI of x-dibao-env is the administrator's (broker-setup's):
    each service container replaces it with its own (`dibao broker uri
    <service>`) before `nameko run` — none runs as the administrator."""
    for name, svc in containers.items():
        command = svc.get("command")
        command = command if isinstance(command, str) else " ".join(command)
        assert re.search(rf"dibao broker uri {name}\b.*export DIBAO_AMQP_URI=.*nameko run", command), (
            f"{name}: export DIBAO_AMQP_URI=\"$$(dibao broker uri {name})\" before `nameko run`")


# --- (d) service_healthy dependencies have a healthcheck ---------------------


def test_service_healthy_dependencies_have_healthchecks(compose):
    services = compose["services"]
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        if isinstance(depends, list):  # short form: no conditions
            depends = {dep: {} for dep in depends}
        for dep, spec in depends.items():
            assert dep in services, f"{name} depends on unknown service {dep!r}"
            if (spec or {}).get("condition") == "service_healthy":
                check = services[dep].get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                )


# --- (e) the init SQL creates every database the containers use --------------


def postgres_init_sql(compose) -> tuple[str, str]:
    """(compose service name, SQL text) of the postgres service's init scripts."""
    for name, svc in compose["services"].items():
        if not str(svc.get("image", "")).startswith("postgres"):
            continue
        sql = []
        for volume in svc.get("volumes") or []:
            source, _, rest = str(volume).partition(":")
            target = rest.split(":")[0]
            if target.startswith(INIT_MOUNT_DIR) and source.startswith("."):
                path = (COMPOSE_FILE.parent / source).resolve()
                assert path.is_file(), f"{name} mounts {source}, which does not exist"
                sql.append(path.read_text(encoding="utf-8"))
        assert sql, f"{name} mounts no init SQL into {INIT_MOUNT_DIR}"
        return name, "\n".join(sql)
    pytest.fail("docker-compose.yml has no postgres service")


def test_init_sql_creates_each_container_database(compose, containers):
    pg_name, sql = postgres_init_sql(compose)
    databases = created_databases(sql)
    checked = 0
    for name, svc in containers.items():
        for key, value in environment(svc).items():
            if not (key.startswith("DIBAO_") and key.endswith("_DB_URI")) or value is None:
                continue
            url = urlsplit(strip_interpolation(value))
            if not url.scheme.startswith("postgresql"):
                continue
            checked += 1
            assert url.hostname == pg_name, f"{name}: {key} points at {url.hostname!r}, not {pg_name!r}"
            database = url.path.lstrip("/")
            assert database in databases, (
                f"{name}: {key} uses database {database!r}, which deploy/postgres-init.sql does not create "
                f"(it creates {sorted(databases)})"
            )
    assert checked, "no Dibao container uses a PostgreSQL DB URI"


def test_init_sql_creates_a_database_for_every_service_in_config(compose):
    _, sql = postgres_init_sql(compose)
    missing = config_db_services() - created_databases(sql)
    assert not missing, f"config.yml DB_URIS has services without a database in the init SQL: {sorted(missing)}"
