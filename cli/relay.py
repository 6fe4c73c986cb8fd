"""``python -m cli.relay SERVICE [--config FILE]``: run one service's outbox
relay on its own, e.g. to drain an outbox while the service is down.

The relay itself is the platform's (:class:`shared.outbox.OutboxRelay`); this
entry point is the front's, because only the front loads a service by name.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import warnings
from pathlib import Path

import eventlet

SERVICES_DIR = Path(__file__).resolve().parents[1] / "services"

log = logging.getLogger("shared.outbox")


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    eventlet.monkey_patch()
    from shared.config import load_config
    from shared.db import ServiceDatabase, configure_cipher, encrypts
    from shared.outbox import OutboxRelay

    parser = argparse.ArgumentParser(prog="python -m cli.relay")
    parser.add_argument("service")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    models = importlib.import_module(f"services.{args.service}.models")
    if encrypts(models.Base.metadata):
        configure_cipher(config, args.service)
    migrations = SERVICES_DIR / args.service / "migrations"
    database = ServiceDatabase(args.service, config["DB_URIS"][args.service], models.Base.metadata,
                               migrations if migrations.exists() else None)
    database.migrate()
    from shared.broker import service_config
    relay = OutboxRelay.from_config(database, service_config(config, args.service))   # as its own broker user
    log.info("relaying %s's outbox (%d pending)", args.service, relay.pending())
    relay.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
