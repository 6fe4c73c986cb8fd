"""The benefit rule: the policy's Python rule and the SQL built from the same
parameters (services/payments/rules.benefit_sql) agree to the fen, for both
formulas, 分类施保 extras and minimums."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from services.payments.rules import benefit_sql
from shared.policy import load_policy

NATIONAL = load_policy("national2021")
JIANGXIA = load_policy("jiangxia")
BANDED = replace(NATIONAL, benefit_formula="banded",
                 benefit_bands=((Decimal("100.00"), Decimal("100.00")), (Decimal("300.00"), Decimal("300.00"))),
                 minimum_benefit=None)
POLICIES = [NATIONAL, JIANGXIA, BANDED]

ENGINE = sa.create_engine("sqlite://")
ROWS = sa.Table("rows", sa.MetaData(), sa.Column("gap", sa.BigInteger), sa.Column("size", sa.Integer),
                sa.Column("vul", sa.Integer))


def sql_benefit(policy, gap_fen: int, size: int, vul: int) -> Decimal:
    expr = benefit_sql(policy, ROWS.c.gap, ROWS.c.size, ROWS.c.vul)
    with ENGINE.connect() as conn:
        ROWS.create(conn, checkfirst=True)
        conn.execute(ROWS.delete())
        conn.execute(ROWS.insert(), {"gap": gap_fen, "size": size, "vul": vul})
        value = conn.execute(sa.select(expr)).scalar_one()
    assert isinstance(value, int)
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


@settings(max_examples=200, deadline=None)
@given(policy=st.sampled_from(POLICIES), gap=st.integers(-200_000, 600_000), size=st.integers(1, 8),
       vul=st.integers(0, 3))
def test_sql_rule_equals_the_policy_rule(policy, gap, size, vul):
    expected = policy.benefit_from_gap(Decimal(gap) / 100, size, vul)
    assert sql_benefit(policy, gap, size, vul) == expected


def test_rules_by_example():
    assert JIANGXIA.benefit_from_gap(Decimal("-5.00"), 2, 1) == Decimal("0.00")           # not eligible
    assert JIANGXIA.benefit_from_gap(Decimal("10.01"), 2, 1) == Decimal("10.01")          # jiangxia: plain gap
    assert NATIONAL.benefit_from_gap(Decimal("10.00"), 1, 0) == Decimal("30.00")          # the minimum
    assert NATIONAL.benefit_from_gap(Decimal("10.00"), 1, 1) == Decimal("60.00")          # 分类施保 +50
    assert BANDED.benefit_from_gap(Decimal("150.00"), 2, 0) == Decimal("200.00")          # 75/person → band 100
    assert BANDED.benefit_from_gap(Decimal("700.00"), 2, 0) == Decimal("700.00")          # above the bands: the gap
    # review's approval figure is unchanged: standard × size − income, never below zero
    assert JIANGXIA.benefit(Decimal("820.00"), 3, Decimal("320.50")) == Decimal("2139.50")
