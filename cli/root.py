"""The ``dibao`` command tree: global options, then one sub-module per concern."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli import (appeal, audit, auth, broker, databases, dlq, docs, doctor, importer, keys, ops, partner, payments, review,
                 secrets, stats, up, verify)
from cli import calendar as calendar_cli
from demo import command as demo
from cli.common import State

app = typer.Typer(
    name="dibao",
    help="Dibao (最低生活保障) operator commands: run the services, the demo, imports, operations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", metavar="PATH",
        help="configuration file (default: env DIBAO_CONFIG, else the repository's config.yml)"),
) -> None:
    """Dibao (最低生活保障) operator commands."""
    ctx.obj = State(config_path=config)


up.register(app)
auth.register(app)
demo.register(app)
ops.register(app)
app.add_typer(importer.app, name="import")
app.add_typer(review.app, name="review")
app.add_typer(verify.app, name="verify")
appeal.register(app)
app.add_typer(partner.app, name="partner")
app.add_typer(payments.app, name="payments")
app.add_typer(dlq.app, name="dlq")
app.add_typer(broker.app, name="broker")
app.add_typer(docs.app, name="docs")
app.add_typer(audit.app, name="audit")
app.add_typer(auth.app, name="auth")
app.add_typer(auth.users_app, name="users")
app.add_typer(secrets.app, name="secrets")
app.add_typer(keys.app, name="keys")
stats.register(app)
databases.register(app)
calendar_cli.register(app)
doctor.register(app)
