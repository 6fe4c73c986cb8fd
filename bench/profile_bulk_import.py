"""Where the time of ``intake.import_households`` goes, in-process.

Not a benchmark (``make bench`` does not collect it); run it by path:

    .venv/bin/python -m pytest bench/profile_bulk_import.py -q -s

The body of ``IntakeService.import_households`` — one unit of work per
call, a savepoint per household, ``load(HouseholdSchema, row)`` and
``handlers.register_household`` — run in-process on a fresh SQLite file,
on 1,000 households in calls of 200 (as the benchmark sends them), without
nameko, RabbitMQ or the outbox relay. It prints:

* the rate of that path, next to the benchmark's in-process baseline (one
  unit of work, so one COMMIT, per household), each on a fresh file;
* the SQL statements per household, by kind;
* a cProfile of the same path (shares; cProfile slows it several times).

(A cProfile of the real benchmark, ``DIBAO_BENCH_PROFILE=1``, profiles one
process in which the client, the container and the relay are greenlets:
its cumulative times are unreliable across greenlet switches.)
"""
from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
from collections import Counter

import sqlalchemy as sa

from bench.bench_bulk_import import CHUNK, DISTRICT, SEED, sample_households
from contracts.rpc import intake as schemas
from services.intake import handlers
from services.intake.models import Base
from services.intake.service import MIGRATIONS
from shared.db import ServiceDatabase, configure_cipher
from shared.errors import EXPECTED_ERRORS
from shared.identity import Actor, Role
from shared.reference import ReferenceData
from shared.rpc import load

N = 1_000
ACTOR = Actor("bench.district", "区专干", DISTRICT, frozenset({Role.DISTRICT_OFFICER}))


def fresh_db(path) -> ServiceDatabase:
    db = ServiceDatabase("intake", f"sqlite:///{path}", Base.metadata, MIGRATIONS)
    db.migrate()
    return db


def import_like_the_service(db: ServiceDatabase, ref, rows: list[dict]) -> int:
    """IntakeService.import_households' body, one call per CHUNK rows."""
    imported = 0
    for i in range(0, len(rows), CHUNK):
        with db.unit_of_work(ACTOR.to_dict(), "bench") as uow:
            for row in rows[i:i + CHUNK]:
                try:
                    data = load(schemas.HouseholdSchema, row)
                    with uow.savepoint():
                        handlers.register_household(uow, ACTOR, data, ref)
                    imported += 1
                except EXPECTED_ERRORS:
                    pass
            uow.commit()
    return imported


def one_unit_of_work_each(db: ServiceDatabase, ref, rows: list[dict]) -> int:
    """The benchmark's in-process baseline: a unit of work per household."""
    for row in rows:
        data = load(schemas.HouseholdSchema, row)
        with db.unit_of_work(ACTOR.to_dict(), "bench") as uow:
            handlers.register_household(uow, ACTOR, data, ref)
    return len(rows)


def test_profile_bulk_import(sqlite_config, tmp_path):
    config = sqlite_config
    configure_cipher(config, "intake")
    ref = ReferenceData.from_config(config)
    rows = sample_households(N, seed=SEED + 7)
    load(schemas.HouseholdSchema, rows[0])   # warm: schema instance, stdnum tables

    rates = {}
    for rep in range(2):
        for name, fn in (("import_households body (savepoints)", import_like_the_service),
                         ("one unit of work per household", one_unit_of_work_each)):
            db = fresh_db(tmp_path / f"{rep}-{name[:6]}.db")
            start = time.perf_counter()
            assert fn(db, ref, rows) == N
            rates.setdefault(name, []).append(N / (time.perf_counter() - start))
            db.dispose()

    db = fresh_db(tmp_path / "count.db")
    kinds = Counter()

    @sa.event.listens_for(db.engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        words = statement.split(None, 2)
        kind = words[0].upper()
        if kind in ("INSERT", "UPDATE", "DELETE"):
            kind += " " + re.sub(r'["`]', "", words[1] if kind != "INSERT" else statement.split()[2])
        elif kind == "SELECT" and "FROM member" in statement:
            kind += " member (resident-ID clash check)"
        kinds[kind + (" (executemany)" if executemany else "")] += 1

    import_like_the_service(db, ref, rows)
    db.dispose()

    db = fresh_db(tmp_path / "profile.db")
    prof = cProfile.Profile()
    prof.enable()
    import_like_the_service(db, ref, rows)
    prof.disable()
    db.dispose()

    print(f"\nin-process, {N} households, calls of {CHUNK} (households/s, two runs each, fresh files):")
    for name, values in rates.items():
        print(f"  {name:<40}" + "  ".join(f"{v:6.0f}" for v in values))
    print(f"\nSQL statements per household ({N} households, {N // CHUNK} calls):")
    for kind, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:<60}{count / N:6.2f}")
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    print(f"\n--- cProfile, {N} households, total {stats.total_tt:.3f} s")
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(
        r"/(services|shared)/|sqlalchemy/orm/(session|unitofwork)\.py:\d+\((flush|_autoflush|execute|commit)|"
        r"marshmallow/schema\.py:\d+\(load\)|sqlite3", 40)
    print(out.getvalue())
