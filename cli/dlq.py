"""``dibao dlq``: the dead-letter queue — events a handler kept failing on."""
from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from cli.common import cli_command, console, fail, get_config, hide_password, one_line, rpc_session

app = typer.Typer(help="Inspect and replay parked events (the dead-letter queue).", no_args_is_help=True)


def _broker(config: dict):
    """The broker to read: the config with broker users on (read as the tools'
    user, replayed as the service that parked each event), else the URI."""
    from shared.broker import users_enabled
    from cli.common import broker_problem, tools_uri

    uri = tools_uri(config)
    problem = broker_problem(uri, config=config)
    if problem is not None:
        fail(f"cannot reach RabbitMQ at {hide_password(uri)}: {one_line(problem) or type(problem).__name__}")
    return config if users_enabled(config) else uri


@app.command("list")
@cli_command
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(100, "--limit", "-n", min=1, help="show at most this many"),
) -> None:
    """List parked events without removing them."""
    from shared.deadletter import list_parked

    parked = list_parked(_broker(get_config(ctx)), limit=limit)
    if not parked:
        console.print("[green]the dead-letter queue is empty[/green]")
        return
    table = Table(title=f"parked events ({len(parked)})")
    for column in ("message id", "event", "handler", "queue", "attempts", "reason"):
        table.add_column(column, overflow="fold")
    for p in parked:
        event = p.event_type or (p.body.get("type", "") if isinstance(p.body, dict) else "")
        source = p.body.get("source", "") if isinstance(p.body, dict) else ""
        table.add_row(p.message_id or "-", f"{source}.{event}" if source else event, p.handler, p.queue,
                      str(p.attempts), one_line(p.reason))
    console.print(table)
    console.print("replay them with [bold]dibao dlq replay[/bold] [--message-id ID]")


@app.command("replay")
@cli_command
def replay(
    ctx: typer.Context,
    message_id: Optional[str] = typer.Option(None, "--message-id", "-m",
                                             help="replay only this event (its message id = event id)"),
) -> None:
    """Send parked events back to the queue of the handler that failed them.

    Each goes through its service's ``replay_dead_letters`` command: the
    system administrator's, recorded in the audit, and only to that service's
    own handler queues — an event naming any other queue stays parked."""
    from nameko.exceptions import RpcTimeout, UnknownService

    from cli.common import existing_service_names
    from shared.deadletter import list_parked

    config = get_config(ctx)
    parked = [p for p in list_parked(_broker(config), limit=100_000)
              if not message_id or p.message_id == message_id]
    if message_id and not parked:
        fail(f"no parked event with message id {message_id}")
    services = sorted({p.handler.partition(".")[0] for p in parked} & set(existing_service_names()))
    count = 0
    if services:
        # as the logged-in person: the service refuses anyone but the system administrator
        with rpc_session(config) as rpc:
            for service in services:
                try:
                    count += getattr(rpc, service).replay_dead_letters(message_id)["replayed"]
                except (UnknownService, RpcTimeout):
                    console.print(f"[yellow]{service} is not running: its events stay parked[/yellow]")
    console.print(f"replayed {count} event(s)")
    if len(parked) > count:
        left = [p for p in list_parked(_broker(config), limit=100_000)
                if not message_id or p.message_id == message_id]
        queues = sorted({p.queue or "(none)" for p in left})
        if left:
            console.print(f"[yellow]{len(left)} event(s) left parked: their queue is no service's handler queue "
                          f"({', '.join(queues)}), or its service is not running — see `dibao dlq list`[/yellow]")
