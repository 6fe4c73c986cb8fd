"""What every ``dibao`` command shares: the consoles, the configuration, the
one-line red error, service discovery, the broker check and the in-process
service runner.

Heavy imports (nameko, kombu, SQLAlchemy) happen inside functions: ``main()``
monkey-patches eventlet first, and quick commands stay quick.

Every command acts as the logged-in person: :func:`cli_context` reads the
session ``dibao login`` stored (``DIBAO_SESSION_FILE``); nothing here makes
a token or lets a caller say who they are.
"""
from __future__ import annotations

import functools
import importlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, NoReturn
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"


class CliError(Exception):
    """A failure the user can act on: printed as one red line, exit ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.message = message
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    raise CliError(message, code)


# --- configuration -------------------------------------------------------------

@dataclass
class State:
    """``ctx.obj``: the global options, the configuration loaded on demand."""

    config_path: Path | None = None
    _config: dict | None = field(default=None, repr=False)

    @property
    def config(self) -> dict:
        if self._config is None:
            from shared.config import load_config

            path = self.config_path
            try:
                self._config = load_config(path)
            except FileNotFoundError as exc:
                fail(f"configuration file not found: {exc.filename}")
            except Exception as exc:  # a YAML error, a bad ${VAR} …
                fail(f"cannot read the configuration {path or os.environ.get('DIBAO_CONFIG') or 'config.yml'}: "
                     f"{one_line(exc)}")
            self._use_profile()
        return self._config

    def _use_profile(self) -> None:
        from shared import profiles

        try:   # the tools hash, sign and open fields under the deployment's profile
            profiles.use(self._config)
        except ValueError as exc:
            fail(one_line(exc))

    @config.setter
    def config(self, value: dict) -> None:
        self._config = value
        self._use_profile()


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def get_config(ctx: typer.Context) -> dict:
    return state(ctx).config


# --- errors --------------------------------------------------------------------

def one_line(value: Any) -> str:
    return " ".join(str(value).split())


def describe_error(exc: BaseException, config: dict | None = None) -> tuple[str, int]:
    """The one line (and exit code) a user sees for an exception."""
    if isinstance(exc, CliError):
        return exc.message, exc.code
    from shared.errors import DibaoError

    if isinstance(exc, DibaoError):
        return describe_dibao_error(exc), 1
    from nameko.exceptions import RemoteError, RpcTimeout, UnknownService

    if isinstance(exc, UnknownService):
        name = exc.args[0] if exc.args else "?"
        return f"service {name!r} is not running on the broker (start it: `dibao up`)", 1
    if isinstance(exc, RpcTimeout):
        return f"no answer within {exc.args[0] if exc.args else '?'} s (is the service running? `dibao up`)", 1
    if isinstance(exc, RemoteError):
        return f"remote error {exc.exc_type}: {one_line(exc.value)}", 1
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", 130
    if is_connection_error(exc):
        return f"cannot reach RabbitMQ: {one_line(exc) or type(exc).__name__}", 1
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}", 1
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {one_line(exc)}", 1
    return f"{type(exc).__name__}: {one_line(exc)}", 1


def describe_dibao_error(exc) -> str:
    """``code: message`` plus the fields a ValidationFailed names, on one line."""
    text = f"{exc.code}: {exc.message}"
    fields = exc.details.get("fields") if isinstance(exc.details, dict) else None
    if fields and not (len(fields) == 1 and exc.message.startswith(f"{next(iter(fields))}:")):
        text += " (" + "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in fields.items()) + ")"
    elif exc.details and not fields:
        text += " (" + ", ".join(f"{k}={v}" for k, v in exc.details.items()) + ")"
    return one_line(text)


def is_connection_error(exc: BaseException) -> bool:
    try:
        from amqp.exceptions import AccessRefused, ConnectionError as AmqpConnectionError, NotAllowed
        from kombu.exceptions import OperationalError
    except ImportError:  # pragma: no cover
        return isinstance(exc, ConnectionError)
    return isinstance(exc, (ConnectionError, OperationalError, AccessRefused, NotAllowed, AmqpConnectionError))


def print_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/bold red] [red]{escape(one_line(message))}[/red]", soft_wrap=True)


def cli_command(fn: Callable) -> Callable:
    """Turn any exception into one red line and a non-zero exit (no traceback).

    ``DIBAO_DEBUG=1`` re-raises, for developers who want the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place errors become exit codes
            if isinstance(exc, SystemExit):
                raise
            if os.environ.get("DIBAO_DEBUG") and not isinstance(exc, CliError):
                raise
            try:
                message, code = describe_error(exc)
            except Exception:  # noqa: BLE001 - never let the error display itself fail
                message, code = f"{type(exc).__name__}: {one_line(exc)}", 1
            print_error(message)
            raise typer.Exit(code) from None

    return wrapper


# --- display helpers -------------------------------------------------------------

def hide_password(uri: str) -> str:
    """A URI fit to print: the password replaced by ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# --- services ------------------------------------------------------------------

def discover_services() -> dict[str, type]:
    """Every service that exists: ``services/<name>/service.py`` defining a
    class whose ``name`` is ``<name>``. Sorted by name."""
    found: dict[str, type] = {}
    for folder in sorted(p for p in SERVICES_DIR.iterdir() if p.is_dir()):
        if not (folder / "service.py").is_file():
            continue
        module_name = f"services.{folder.name}.service"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            fail(f"cannot import {module_name}: {type(exc).__name__}: {one_line(exc)}")
        for obj in vars(module).values():
            if (isinstance(obj, type) and obj.__module__ == module.__name__
                    and getattr(obj, "name", None) == folder.name):
                found[folder.name] = obj
                break
    return found


def existing_service_names() -> list[str]:
    """Names of the service folders with a service.py (no import)."""
    return sorted(p.name for p in SERVICES_DIR.iterdir() if (p / "service.py").is_file())


def require_service(name: str) -> None:
    known = existing_service_names()
    if name not in known:
        fail(f"unknown service {name!r}; existing services: {', '.join(known) or 'none'}")


def home_district(config: dict) -> str:
    """The deployment's district code (the first district in DIVISIONS_FILE)."""
    from shared.config import repo_path
    from shared.divisions import DivisionRegistry

    registry = DivisionRegistry.load(repo_path(config.get("DIVISIONS_FILE")))
    districts = sorted({registry.ancestors(c.code)[0].code for c in registry.communities()})
    if not districts:
        fail("DIVISIONS_FILE lists no district")
    return districts[0]


# --- the broker ------------------------------------------------------------------

def tools_uri(config: dict) -> str:
    """The URI the operators' tools connect with: their own broker user
    (``<prefix>cli``) when broker users are on, else ``AMQP_URI``."""
    from shared.broker import uri_for

    return uri_for(config, "cli")


def broker_problem(uri: str, timeout: float = 3.0, config: dict | None = None) -> BaseException | None:
    """``None`` when RabbitMQ answers at ``uri``, else the error (TLS as
    ``config``'s ``AMQP_SSL`` says)."""
    from shared.broker import connection

    try:
        with connection(config or {}, uri=uri, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not answering"
        return exc


def _is_local(uri: str) -> bool:
    host = urlsplit(uri).hostname
    return host in (None, "", "127.0.0.1", "localhost", "::1")


def _rejected(exc: BaseException) -> bool:
    """The broker answered but turned us away (credentials, vhost): starting
    one would not help."""
    try:
        from amqp.exceptions import AccessRefused, NotAllowed
    except ImportError:  # pragma: no cover
        return False
    text = str(exc)
    return (isinstance(exc, (AccessRefused, NotAllowed)) or "ACCESS_REFUSED" in text or "NOT_ALLOWED" in text)


HOW_TO_GET_RABBITMQ = (
    "install and start one: `apt-get install rabbitmq-server` (then `rabbitmq-server -detached`), "
    "or `docker compose up -d rabbitmq`; or point DIBAO_AMQP_URI at a running broker"
)


def ensure_broker(config: dict, start: bool = True, wait_seconds: float = 60.0) -> None:
    """Make sure RabbitMQ answers at AMQP_URI; start a local one when we may."""
    uri = config["AMQP_URI"]
    problem = broker_problem(uri, config=config)
    if problem is None:
        return
    shown = hide_password(uri)
    if _rejected(problem):
        fail(f"RabbitMQ at {shown} turned us away (user, password or vhost): "
             f"{one_line(problem) or type(problem).__name__}")
    can_start = (start and _is_local(uri) and shutil.which("rabbitmq-server")
                 and hasattr(os, "geteuid") and os.geteuid() == 0)
    if not can_start:
        fail(f"RabbitMQ is not answering at {shown}; {HOW_TO_GET_RABBITMQ}")
    if shutil.which("rabbitmqctl") and subprocess.run(
            ["rabbitmqctl", "-q", "await_startup", "--timeout", "2"], capture_output=True, timeout=30,
            check=False).returncode == 0:
        fail(f"a RabbitMQ node runs on this host but does not answer at {shown}: check AMQP_URI "
             f"(host, port) — {one_line(problem) or type(problem).__name__}")
    console.print(f"RabbitMQ is not answering at {shown}: starting it ([bold]rabbitmq-server -detached[/bold])")
    launched = subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, text=True, timeout=60,
                              check=False)
    if launched.returncode != 0:
        fail(f"`rabbitmq-server -detached` failed ({launched.returncode}): "
             f"{one_line(launched.stderr or launched.stdout)[:300]}")
    deadline = time.monotonic() + wait_seconds
    with console.status("waiting for RabbitMQ (rabbitmqctl await_startup)…"):
        started = False
        while time.monotonic() < deadline:
            left = max(1, int(deadline - time.monotonic()))
            done = subprocess.run(["rabbitmqctl", "-q", "await_startup", "--timeout", str(min(10, left))],
                                  capture_output=True, timeout=min(10, left) + 15, check=False)
            if done.returncode == 0:
                started = True
                break
            time.sleep(2)
        while started and time.monotonic() < deadline:
            if broker_problem(uri, config=config) is None:
                console.print("RabbitMQ is up.")
                return
            time.sleep(1)
    fail(f"RabbitMQ did not start within {wait_seconds:.0f} s (see `rabbitmqctl status`); {HOW_TO_GET_RABBITMQ}")


# --- running services in this process -------------------------------------------------

def configure_logging(config: dict, quiet: bool = False) -> None:
    """The config's LOGGING (what ``nameko run`` does); ``quiet`` keeps only errors."""
    import logging
    import logging.config

    if config.get("LOGGING") and not quiet:
        logging.config.dictConfig(config["LOGGING"])
    elif quiet:
        logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
        for name in ("nameko", "shared", "services"):
            logging.getLogger(name).setLevel(logging.ERROR)


def service_runner(config: dict, classes):
    """A nameko ServiceRunner with these services, each container on its own
    config: its own broker user when broker users are on (shared.broker)."""
    from nameko.runners import ServiceRunner

    from shared.broker import service_config

    runner = ServiceRunner(config)
    for cls in classes:
        runner.config = service_config(config, cls.name)
        runner.add_service(cls)
    runner.config = config
    return runner


def check_service_users(config: dict) -> None:
    """With broker users on, fail in one line unless the services' users can
    connect (``dibao broker setup`` creates them)."""
    from shared.broker import uri_for, users_enabled
    from shared.secrets import SecretError

    if not users_enabled(config):
        return
    try:
        uri = uri_for(config, "cli")
    except SecretError:
        fail("the services' broker users are not set up: run `dibao broker setup` "
             "(or set BROKER_SERVICE_USERS false to connect everything with AMQP_URI)")
    problem = broker_problem(uri, config=config)
    if problem is not None:
        fail(f"the broker refuses the services' users ({one_line(problem) or type(problem).__name__}): "
             f"run `dibao broker setup`")


def start_runner(config: dict, classes: list[type]):
    """A nameko ServiceRunner with these services, started (blocks until ready)."""
    runner = service_runner(config, classes)
    runner.start()
    return runner


def ping(config: dict, service: str, timeout: float) -> dict:
    """``<service>.ping()`` (no token: a health check names nobody), waiting
    at most ``timeout`` seconds in all."""
    import eventlet

    from shared.client import rpc_with

    with eventlet.Timeout(timeout + 5, exception=TimeoutError(f"{service}: no answer within {timeout:g} s")):
        with rpc_with(config, None, timeout=timeout) as rpc:
            return getattr(rpc, service).ping()


# --- who asks: the logged-in person ----------------------------------------------------

def session_file() -> Path:
    """``DIBAO_SESSION_FILE``, else ``<user config dir>/dibao/session.json``."""
    explicit = os.environ.get("DIBAO_SESSION_FILE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "dibao" / "session.json"


def cli_context(config: dict) -> dict:
    """The context data every command's RPCs carry: the token of the session
    ``dibao login`` stored (JSON ``{"token": ...}``, mode 0600). No session:
    a one-line error telling how to log in."""
    import json

    from shared.identity import AUTH_TOKEN_KEY

    path = session_file()
    try:
        token = json.loads(path.read_text(encoding="utf-8")).get("token")
    except FileNotFoundError:
        token = None
    except (OSError, ValueError, AttributeError) as exc:
        fail(f"cannot read the session file {path}: {one_line(exc)} (log in again: `dibao login --user U`)")
    if not token:
        fail(f"not logged in (no session in {path}): `dibao login --user U` first")
    return {AUTH_TOKEN_KEY: token}


def rpc_session(config: dict, timeout: float | None = None):
    """A cluster RPC proxy acting as the logged-in person."""
    from shared.client import rpc_with

    return rpc_with(config, cli_context(config), timeout)
