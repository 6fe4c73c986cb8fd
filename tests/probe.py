"""A consumer service for reliability tests: counts the effects of intake
events through the inbox, and can be told to fail."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import Database, platform_tables
from shared import deadletter
from shared.events import parse
from shared.inbox import consume_event


class ProbeBase(DeclarativeBase):
    pass


platform_tables(ProbeBase.metadata)


class Effect(ProbeBase):
    __tablename__ = "effect"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(sa.String(36))
    household_id: Mapped[str] = mapped_column(sa.String(36))


FAILURES = {"remaining": 0, "calls": 0}


class InboxProbe(deadletter.DeadLetterReplay):
    name = "probe"
    db = Database("probe", ProbeBase.metadata, None, relay=False)

    @consume_event("intake", "household_registered")
    def on_household(self, body):
        FAILURES["calls"] += 1
        event = parse(body)
        with self.db() as uow:
            uow.consume(event, "probe.on_household")
            uow.session.add(Effect(event_id=event["event_id"], household_id=event["subject"]["household_id"]))
            if FAILURES["remaining"]:
                FAILURES["remaining"] -= 1
                raise RuntimeError("the probe was told to fail")
            uow.commit()


def effects(uri: str) -> list[tuple[str, str]]:
    from shared.db import make_engine
    engine = make_engine(uri)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text("SELECT event_id, household_id FROM effect"))]
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()
