"""``dibao up``: every existing service in one process, on the embedded defaults.

What ``nameko run`` does for one module, for all of them: a ServiceRunner
with each service found under ``services/``; SIGTERM and Ctrl-C stop it
gracefully (a second Ctrl-C kills).
"""
from __future__ import annotations

import errno
import signal
from typing import Optional

import typer
from rich.panel import Panel
from rich.table import Table

from cli.common import (check_service_users, cli_command, configure_logging, console, discover_services,
                        ensure_broker, fail, get_config, hide_password, one_line, service_runner)


def register(app: typer.Typer) -> None:
    app.command("up")(up)


def select_services(wanted: Optional[str]) -> dict[str, type]:
    """The discovered services, or the subset named in ``--services a,b``."""
    found = discover_services()
    if not found:
        fail("no service exists yet (services/<name>/service.py)")
    if not wanted:
        return found
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in names if n not in found]
    if unknown:
        fail(f"unknown service(s) {', '.join(unknown)}; existing: {', '.join(found)}")
    return {n: found[n] for n in names}


def uses_database(service_cls: type) -> bool:
    """Whether a service keeps a database (declares a ``Database``): the gateway does not."""
    from shared.db import Database

    return any(isinstance(value, Database) for value in vars(service_cls).values())


def web_address(config: dict) -> str:
    """Where the gateway listens (nameko's WEB_SERVER_ADDRESS)."""
    return str(config.get("WEB_SERVER_ADDRESS") or "127.0.0.1:8080")


def console_url(config: dict) -> str:
    host, _, port = web_address(config).rpartition(":")
    host = host or "127.0.0.1"
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"


def check_web_port(config: dict) -> None:
    """Fail in one line when the gateway's address is taken (before anything starts)."""
    import socket

    host, _, port = web_address(config).rpartition(":")
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host or "0.0.0.0", int(port)))
    except (OSError, ValueError) as exc:
        fail(f"the gateway cannot listen on {web_address(config)} ({one_line(exc)}): stop what uses it, or set "
             f"DIBAO_WEB_PORT (and DIBAO_WEB_HOST)")


def describe(config: dict, services: dict[str, type], title: str = "dibao up") -> Panel:
    """A panel: what runs, on which policy, databases and broker."""
    from shared.config import data_dir
    from shared.policy import policy_from_config

    policy = policy_from_config(config)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("services", ", ".join(services))
    grid.add_row("policy", f"{policy.name} — {policy.title}")
    grid.add_row("broker", hide_password(config["AMQP_URI"]))
    from shared.broker import user_name, users_enabled
    grid.add_row("broker users", ", ".join(user_name(config, n) for n in services) if users_enabled(config)
                 else "off: every service connects with AMQP_URI's user")
    for name, cls in services.items():
        if uses_database(cls):
            grid.add_row(f"db {name}", hide_password(config.get("DB_URIS", {}).get(name, "(none)")))
    if "gateway" in services:
        url = console_url(config)
        grid.add_row("console", f"{url} (API: {url}api/openapi.json, docs {url}api/docs)")
    grid.add_row("data dir", str(data_dir(config).resolve()))
    return Panel(grid, title=title, expand=False)


def ensure_deployment_secrets(config: dict, services) -> None:
    """The deployment's first start generates the secrets it lacks into
    <SECRETS_DIR> (0600) and later starts reuse them; a secret set to a value
    the repository published, or malformed, stops here in one line."""
    from cli.secrets import service_encrypts
    from shared.secrets import check_secrets, ensure_secrets, secrets_dir, secrets_to_check

    made = ensure_secrets(config)
    if made:
        console.print(f"generated this deployment's secrets in {secrets_dir(config).resolve()} (mode 0600; keep "
                      f"them, the DATA_KEY_<SERVICE> keyrings above all): {', '.join(made)}")
    problems = [f"{name}: {problem}" for name in services
                for problem in check_secrets(config, secrets_to_check(config, name, service_encrypts(name)))]
    if problems:
        fail("refusing to start — " + "; ".join(problems))


@cli_command
def up(
    ctx: typer.Context,
    services: Optional[str] = typer.Option(
        None, "--services", "-s", metavar="NAMES",
        help="comma-separated services to run (default: every service under services/)"),
) -> None:
    """Run every existing service in this process until Ctrl-C or SIGTERM."""
    import eventlet

    config = get_config(ctx)
    chosen = select_services(services)
    missing_db = [n for n, cls in chosen.items() if uses_database(cls) and n not in config.get("DB_URIS", {})]
    if missing_db:
        fail(f"config has no DB_URIS for {', '.join(missing_db)}")
    ensure_deployment_secrets(config, chosen)
    ensure_broker(config)
    check_service_users(config)
    if "gateway" in chosen:
        check_web_port(config)
    # every service's own token comes from identity.service_token (shared.remote); only identity signs
    configure_logging(config)
    console.print(describe(config, chosen))

    runner = service_runner(config, chosen.values())

    def shutdown(signum, frame):
        # signal handlers run in the main loop and may not use eventlet
        # primitives: stop in a greenlet (as nameko run does)
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, shutdown)
    runner.start()
    console.print(f"[green]running[/green] {', '.join(chosen)} — Ctrl-C or SIGTERM stops")
    if "gateway" in chosen:
        console.print(f"console: point a browser at [bold]{console_url(config)}[/bold]")
    runnlet = eventlet.spawn(runner.wait)
    while True:
        try:
            runnlet.wait()
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        except KeyboardInterrupt:
            console.print("\nstopping (Ctrl-C again to kill)…")
            try:
                runner.stop()
            except KeyboardInterrupt:
                runner.kill()
        else:
            break
    console.print("stopped.")
