"""``shared.jurisdiction.code_within``: the index range selects exactly the
codes ``LIKE 'unit%'`` selects — at every level, at a unit whose code ends
in 9s, never a neighbour's — and SQLite answers it from the index."""
from __future__ import annotations

import sqlalchemy as sa

from shared.jurisdiction import code_within

CODES = ["420115", "420115001", "420115001001", "420115001002", "420115001009", "420115001010", "420115002001",
         "420115009", "420115009999", "420115010001", "420116001001", "420114999999", "999999", "999999999001",
         "4201150010019", "42011"]


def selected(unit: str, predicate) -> list[str]:
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("code", sa.String(12), index=True))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"code": c} for c in CODES])
        return sorted(conn.execute(sa.select(table.c.code).where(predicate(table.c.code, unit))).scalars())


def test_the_range_selects_what_starts_with_the_unit_and_nothing_else():
    for unit in ("420115", "420115001", "420115001001", "420115009", "420115001009", "999999", "999999999",
                 "420114", "42011", "4"):
        expected = sorted(c for c in CODES if c.startswith(unit))
        assert selected(unit, code_within) == expected, unit


def test_a_code_that_is_not_digits_falls_back_to_an_escaped_like():
    assert selected("4201%", code_within) == []          # the % is a character, not a wildcard
    assert selected("", code_within) == sorted(CODES)


def test_sqlite_answers_the_range_from_the_index():
    engine = sa.create_engine("sqlite://")
    meta = sa.MetaData()
    table = sa.Table("t", meta, sa.Column("code", sa.String(12), index=True))
    meta.create_all(engine)
    with engine.connect() as conn:
        for predicate, uses_index in ((code_within(table.c.code, "420115001"), True),
                                      (table.c.code.startswith("420115001", autoescape=True), False)):
            sql = str(sa.select(table.c.code).where(predicate).compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(row) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert ("USING COVERING INDEX" in plan or "USING INDEX" in plan) is uses_index, plan
