"""``dibao broker``: the broker's users and permissions, partner bureaus (DESIGN §3.4a)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, hide_password, one_line

app = typer.Typer(help="The broker: a user per service (setup), partner bureaus.", no_args_is_help=True)


def partner_events() -> dict[str, list[str]]:
    """Source service -> the event types partners receive (from the contracts)."""
    from shared import events
    from cli.docs import load_catalogue

    load_catalogue()
    out: dict[str, list[str]] = {}
    for (source, name), spec in sorted(events.CATALOGUE.items()):
        if spec.partner_fields is not None and spec.schema.__module__.split(".")[0] in ("contracts", "shared"):
            out.setdefault(source, []).append(name)
    return out


def _admin(call, *args):
    from shared.rabbit_admin import BrokerAdminError
    from shared.secrets import SecretError

    try:
        return call(*args)
    except (BrokerAdminError, SecretError, ValueError) as exc:
        fail(one_line(exc))


@app.command("setup")
@cli_command
def setup(ctx: typer.Context) -> None:
    """Create the vhost, one broker user per service (passwords in DATA_DIR/secrets),
    their permissions and the core exchanges and queues. Idempotent."""
    from cli.common import _rejected, broker_problem, ensure_broker
    from shared.rabbit_admin import setup as broker_setup

    config = get_config(ctx)
    problem = broker_problem(config["AMQP_URI"], config=config)
    if problem is not None and not _rejected(problem):     # not running (a missing vhost is ours to create)
        ensure_broker(config)
    done = _admin(broker_setup, config)
    table = Table(title=f"broker users on vhost {done['vhost']!r} ({hide_password(config['AMQP_URI'])})")
    table.add_column("service")
    table.add_column("broker user")
    for who, user in done["users"].items():
        table.add_row(who, user)
    console.print(table)
    console.print("[green]broker ready[/green]: each service connects as its own user "
                  "(BROKER_SERVICE_USERS on; `dibao broker uri SERVICE` for `nameko run`)")


@app.command("uri")
@cli_command
def uri(ctx: typer.Context, service: str = typer.Argument(..., help="service (or cli)")) -> None:
    """Print a service's AMQP URI with its own broker user (for `nameko run`)."""
    from shared.broker import BROKER_USERS, uri_for

    if service not in BROKER_USERS:
        fail(f"unknown broker user {service!r}; known: {', '.join(BROKER_USERS)}")
    typer.echo(_admin(uri_for, get_config(ctx), service))


@app.command("partner-add")
@cli_command
def partner_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the partner bureau, e.g. finance_bureau"),
    host: Optional[str] = typer.Option(None, "--host", help="broker host name the partner connects to "
                                                             "(default BROKER_PARTNER_HOST, else AMQP_URI's)"),
    service: Optional[str] = typer.Option(None, "--service", help="the name of the partner's nameko service "
                                                                  "(default: NAME)"),
    handler: list[str] = typer.Option([], "--handler", metavar="SOURCE.EVENT[=[SERVICE.]METHOD]",
                                      help="a handler of the partner's nameko service, e.g. review.case_approved"
                                           "=on_case_approved (repeatable; default: on_<event> for every event "
                                           "partners receive); its queue is made now, so events published before "
                                           "the partner first connects wait for it"),
) -> None:
    """Create a partner's credentials, its space and the queues its nameko
    service will consume; print its AMQP URI (last line)."""
    from shared.rabbit_admin import add_partner, partner_handlers

    config = get_config(ctx)
    if host:
        config = dict(config, BROKER_PARTNER_HOST=host)
    receives = partner_events()
    queues = _admin(partner_handlers, receives, service or name, handler)
    uri_text = _admin(add_partner, config, name, receives, handler, service)
    console.print(f"partner [bold]{name}[/bold] receives (partner forms, see docs/events.md):")
    for source, types in receives.items():
        console.print(f"  {source}: {', '.join(types)}")
    console.print("queues waiting for its nameko service (a handler named otherwise: --handler):", soft_wrap=True)
    for source, kind, queue in queues:
        console.print(f"  @event_handler({source!r}, {kind!r}) → {queue}", soft_wrap=True)
    typer.echo(uri_text)


@app.command("partner-remove")
@cli_command
def partner_remove(ctx: typer.Context, name: str = typer.Argument(..., help="the partner bureau")) -> None:
    """Revoke a partner at once (user, connections, its space, what fed it)."""
    from shared.rabbit_admin import remove_partner

    if not _admin(remove_partner, get_config(ctx), name):
        fail(f"no partner {name!r}")
    console.print(f"partner {name} removed")


@app.command("partners")
@cli_command
def partners(ctx: typer.Context) -> None:
    """List the partners and what each receives."""
    from shared.rabbit_admin import list_partners

    found = _admin(list_partners, get_config(ctx))
    if not found:
        console.print("no partner bureau yet (dibao broker partner-add NAME)")
        return
    receives = partner_events()
    table = Table(title="partner bureaus")
    for column in ("partner", "vhost", "source", "events", "shovel", "waiting"):
        table.add_column(column, overflow="fold")
    for p in found:
        for source, state in sorted(p["sources"].items()) or [("-", {"shovel": "-", "waiting": 0})]:
            table.add_row(p["name"], p["vhost"], source, ", ".join(receives.get(source, [])), str(state["shovel"]),
                          str(state["waiting"]))
    console.print(table)
