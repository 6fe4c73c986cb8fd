"""``dibao demo [--months N]``: the command — find or start the services, run the entry part
(:mod:`demo.entry`), then with ``--months`` the year (:mod:`demo.year`).

When no service answers ``ping`` within 2 s, the demo runs intake, review,
notify and identity itself (every service under ``services/``, as ``dibao
up``), in this process, on fresh SQLite files in ``<DATA_DIR>/demo``, and
stops them at the end.

The demo's people are accounts at identity (:mod:`demo.accounts`), listed
with their passwords and TOTP secrets in ``<DATA_DIR>/demo/accounts.json``
(0600): while the services run, anyone can ``dibao login`` as any of them.
"""
from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import typer

from cli.common import (cli_command, configure_logging, console, discover_services, ensure_broker, fail, get_config,
                        hide_password, ping, start_runner)
from demo.entry import Demo


#: what the demo drives (started together when none answers); identity makes its people's accounts
REQUIRED_SERVICES = ("intake", "review", "notify", "identity")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo_dir_of(config: dict) -> Path:
    from shared.config import data_dir

    return (data_dir(config) / "demo").resolve()


def start_demo_services(config: dict, movable_clock: bool = False):
    """Every existing service (as ``dibao up`` finds them: intake, review,
    notify, …) in this process, on fresh SQLite files in <DATA_DIR>/demo;
    with ``movable_clock``, on the clock of the file <DATA_DIR>/demo/clock
    (``CLOCK: file:…``) that ``dibao demo --months`` moves."""
    import eventlet

    from shared.config import SERVICES

    demo_dir = demo_dir_of(config)
    demo_dir.mkdir(parents=True, exist_ok=True)
    services = discover_services()
    missing = [name for name in REQUIRED_SERVICES if name not in services]
    if missing:
        fail(f"the demo needs the {', '.join(missing)} service(s) (services/<name>/service.py)")
    names = sorted(set(SERVICES) | set(services) | set(config.get("DB_URIS", {})))
    for name in names:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(demo_dir, f"{name}.db{suffix}").unlink(missing_ok=True)
    # and what notify wrote last time: the boards and the messages to households
    for stale in [*demo_dir.glob("notices/*.html"), *demo_dir.glob("notices/*.pdf"),
                  *demo_dir.glob("notices/*/*.pdf"), demo_dir / "messages" / "outbox.jsonl"]:
        stale.unlink(missing_ok=True)
    demo_config = dict(config, DATA_DIR=str(demo_dir),
                       DB_URIS={name: f"sqlite:///{demo_dir / (name + '.db')}" for name in names})
    from shared.secrets import ensure_secrets

    ensure_secrets(demo_config)   # the demo's own deployment: its secrets in <DATA_DIR>/demo/secrets, kept
    if movable_clock:
        (demo_dir / "clock").unlink(missing_ok=True)
        (demo_dir / "year.json").unlink(missing_ok=True)
        demo_config["CLOCK"] = f"file:{demo_dir / 'clock'}"
    configure_logging(demo_config, quiet=True)
    console.print(f"no service answers ping on {hide_password(config['AMQP_URI'])} within 2 s: "
                  f"starting {', '.join(services)} in this process (fresh SQLite files in {demo_dir})")
    if "gateway" in services and not web_port_free(demo_config):
        console.print(f"the console's address {demo_config.get('WEB_SERVER_ADDRESS')} is taken: the demo runs "
                      f"without its own gateway (set DIBAO_WEB_PORT for one)")
        services.pop("gateway")
    runner = start_runner(demo_config, list(services.values()))
    deadline = time.monotonic() + 30
    for name in REQUIRED_SERVICES:
        while True:
            try:
                ping(demo_config, name, 5)
                break
            except Exception:  # noqa: BLE001 - not ready yet
                if time.monotonic() > deadline:
                    runner.kill()
                    raise
                eventlet.sleep(0.2)
    return runner, demo_config


def web_port_free(config: dict) -> bool:
    from cli.up import check_web_port
    from cli.common import CliError

    try:
        check_web_port(config)
        return True
    except CliError:
        return False


def movable_clock(config: dict):
    """The clock ``--months`` moves: the services' ``CLOCK: file:PATH`` (shared with this
    configuration); any other clock cannot be moved from here."""
    from shared.clock import FileClock, clock_from_config

    try:
        clock = clock_from_config(config)
    except ValueError as exc:
        fail(str(exc))
    if not isinstance(clock, FileClock):
        fail(f"--months moves the services' clock, but the services answering on "
             f"{hide_password(config['AMQP_URI'])} run on the clock {config.get('CLOCK') or 'system'!r}, which the "
             f"demo cannot move: start them with DIBAO_CLOCK=file:/path/to/clock (e.g. "
             f"`DIBAO_CLOCK=file:var/clock dibao up`) and run the demo with the same DIBAO_CLOCK — or stop them, "
             f"and the demo runs its own services on a clock of its own")
    return clock


def running_services(config: dict) -> tuple[dict, list[str]]:
    """(answers of the services that answer ping within 2 s, names of those that do not)."""
    answers, missing = {}, []
    for name in REQUIRED_SERVICES:
        try:
            answers[name] = ping(config, name, 2)
        except Exception:  # noqa: BLE001 - not running (unknown service, timeout…)
            missing.append(name)
    return answers, missing


@cli_command
def demo(
    ctx: typer.Context,
    households: int = typer.Option(36, "--households", "-n", min=1, max=2000, help="households to register"),
    seed: int = typer.Option(2024, "--seed", help="random seed of the sample district"),
    months: int = typer.Option(0, "--months", min=0, max=36,
                               help="then simulate this many months, month by month (a year in the life: "
                                    "check-ins, labour, re-reviews, a standard raise, a campaign, payment runs)"),
) -> None:
    """Drive a sample district through intake and the review to approval; show the result."""
    started = time.monotonic()
    config = get_config(ctx)
    ensure_broker(config)
    accounts_file = demo_dir_of(config) / "accounts.json"   # <DATA_DIR>/demo, whoever runs the services
    runner = None
    clock = None
    answers, missing = running_services(config)
    if not missing:
        console.print(f"services answer on {hide_password(config['AMQP_URI'])} "
                      f"({', '.join(answers)}; policy {answers['review'].get('policy')}): using them")
        if months:
            clock = movable_clock(config)
    elif len(missing) == len(REQUIRED_SERVICES):
        runner, config = start_demo_services(config, movable_clock=months > 0)
        if months:
            clock = movable_clock(config)
    else:
        fail(f"{', '.join(answers)} answer(s) on {hide_password(config['AMQP_URI'])} but {', '.join(missing)} "
             f"do(es) not: the demo needs {', '.join(REQUIRED_SERVICES)} together — start the others "
             f"(`dibao up`), or stop these so that the demo runs its own")
    try:
        if clock is not None:
            from demo.year_log import start_day
            from shared.reference import ReferenceData

            clock.set(start_day(ReferenceData.from_config(config).calendar, date.today(), months))
        run = Demo(config, households, seed, accounts_file=accounts_file)
        run.reject_on_report = run.appeal_demo = not months
        run.run()
        if clock is not None:
            from demo.year import run_year

            run_year(run, months, clock, seed)
    finally:
        if runner is not None:
            with console.status("stopping the demo's services…"):
                runner.stop()
    if runner is not None:
        outbox = Path(config["DATA_DIR"]) / "messages" / "outbox.jsonl"
        if outbox.is_file():
            console.print(f"messages to the households (notify's file channel): {outbox}")
    login_as = next((e for e in run.accounts.known.values() if e["role"] == "community_officer"), None)
    if login_as is not None:
        console.print(f"the demo's people, with their passwords and TOTP secrets: {accounts_file} (mode 0600, "
                      f"demo data only) — log in as any of them while the services run, e.g. "
                      f"`dibao login --user {login_as['user']} --password-stdin --otp CODE` (docs/demo.md)",
                      soft_wrap=True)
        if runner is not None:
            console.print("   (the demo's own services have stopped, and their accounts with them: to log in as a "
                          "demo person, run the demo against running services — `dibao up`, then `dibao demo`)")
    c = run.counts
    console.print(f"[green]demo finished[/green] in {time.monotonic() - started:.1f} s: {c['households']} households, "
                  f"{c['applications']} applications, {c['investigations']} investigations, "
                  f"{c['approved']} approved, {c['rejected']} rejected, "
                  f"{c['checkins']} check-ins, {c['documents']} documents (seed {run.seed}, policy {run.policy.name})")
