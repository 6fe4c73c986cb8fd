"""``dibao partner serve --bureau NAME --data FILE.csv``: the reference responder
(cli/responder.py) as a partner bureau runs it, with only its partner URI
(``--uri``, or env ``DIBAO_PARTNER_URI``: what ``dibao broker partner-add NAME
--verification`` printed)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from cli.common import cli_command, console, fail

app = typer.Typer(help="Partner bureaus' side: the reference responder (核对).", no_args_is_help=True)


@app.command("serve")
@cli_command
def serve(
    bureau: str = typer.Option(..., "--bureau", help="the bureau, e.g. public_security"),
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False,
                              help="CSV: resident_id,kind,description,amount,as_of"),
    uri: Optional[str] = typer.Option(None, "--uri", envvar="DIBAO_PARTNER_URI",
                                      help="the partner URI from `dibao broker partner-add NAME --verification`"),
) -> None:
    """Answer the bureau's verification requests from a CSV until Ctrl-C."""
    import logging

    from nameko.runners import ServiceRunner

    from cli.responder import load_findings, responder

    if not uri:
        fail("give the partner URI: --uri or DIBAO_PARTNER_URI (dibao broker partner-add NAME --verification)")
    logging.basicConfig(level=os.environ.get("DIBAO_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    people = len(load_findings(data))
    runner = ServiceRunner({"AMQP_URI": uri, "serializer": "json"})
    runner.add_service(responder(bureau, data, uri))
    console.print(f"reference responder for [bold]{bureau}[/bold]: {people} people in {data}; Ctrl-C stops it")
    runner.start()
    try:
        runner.wait()
    except KeyboardInterrupt:
        runner.stop()
