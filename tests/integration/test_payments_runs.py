"""Payment runs over real RabbitMQ: cadence under each policy, maker ≠
checker, freeze, export, reconciliation and carry-forward, exactly once."""
from __future__ import annotations

from decimal import Decimal

import eventlet
import pytest
from nameko.extensions import DependencyProvider

from shared.bank_formats import ReturnLine, load_format
from services.payments.service import PaymentsService
from shared.errors import Conflict, Forbidden, ValidationFailed
from shared.testing import wait_for
from tests.payments_helpers import (COMMUNITY, DISTRICT, VILLAGE, caseworker, approve_cases, bank_lines, case_approved, checker,
                                    checkin, envelope, export, import_return, ledger_case, maker, month,
                                    outbox_types, publish, quarter, query)

pytestmark = pytest.mark.integration


def start(container_factory, config, policy):
    config = dict(config, POLICY=policy)
    container_factory(PaymentsService, config).start()
    return config


def test_monthly_run_maker_checker_export_reconcile_carry_forward(container_factory, config):
    config = start(container_factory, config, "national2021")
    approve_cases(config, [case_approved("c1", month(-2), "812.50"), case_approved("c2", month(-2), "333.33", size=1)])
    approve_cases(config, [case_approved("c3", month(-2), "100.00")], payee=False)   # nobody gave an account

    with maker(config) as rpc:
        with pytest.raises(ValidationFailed) as err:                     # a future period
            rpc.payments.create_run({"period": month(1), "area_type": "urban", "division_code": DISTRICT})
        assert "period" in err.value.fields
        with pytest.raises(ValidationFailed) as err:                     # national: rural is monthly too
            rpc.payments.create_run({"period": quarter(-1)[0], "area_type": "rural", "division_code": DISTRICT})
        assert "period" in err.value.fields
        with pytest.raises(Forbidden):                                   # only an administrator moves the clock
            rpc.payments.create_run({"period": month(1), "area_type": "urban", "division_code": DISTRICT,
                                     "as_of": f"{month(1)}-01"})
        run = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
    assert (run["lines"], run["total"], run["held"]) == (2, "1145.83", 1)
    assert query(config, "SELECT count(*) FROM payment_run")[0][0] == 1     # the refused ones wrote nothing
    with maker(config) as rpc:
        detail = rpc.payments.get_run(run["id"])
        assert [(h["case_id"], h["reason"]) for h in detail["held_back"]] == [("c3", "no_payee_account")]
        with pytest.raises(Forbidden):                                   # maker ≠ checker
            rpc.payments.approve_run(run["id"])
        with pytest.raises(Conflict):                                    # not approved: no bank file
            rpc.payments.export_run(run["id"], "csv")
    with checker(config) as rpc:
        approved = rpc.payments.approve_run(run["id"])
        assert approved["status"] == "approved" and approved["approved_by"] == "zhou.director"
        with pytest.raises(ValidationFailed) as err:                     # unknown bank format
            rpc.payments.export_run(run["id"], "swift-mt940")
        assert "format" in err.value.fields
    with maker(config) as rpc:                                           # the period is closed now
        with pytest.raises(Conflict):
            rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})

    content, out = export(config, run["id"], "csv")
    lines = bank_lines(content)
    assert sorted(ln["amount"] for ln in lines) == ["333.33", "812.50"]
    assert all(ln["account_number"].startswith("62220200") and ln["payee_name"] == "张三丰" for ln in lines)
    assert "壹仟壹佰肆拾伍元捌角叁分" in out["summary"] and out["total"] == "1145.83"

    by_case = {ln["case_id"]: ln for ln in lines}
    fmt = load_format("csv")
    good = [ReturnLine(int(by_case["c1"]["line_id"]), Decimal("812.50"), True, None, None),
            ReturnLine(int(by_case["c2"]["line_id"]), Decimal("333.33"), False, "账户已销户 account closed")]
    wrong_total = fmt.write_return(good).replace(b"1145.83", b"1145.84")
    with pytest.raises(ValidationFailed) as err:
        import_return(config, run["id"], wrong_total)
    assert "total" in err.value.fields
    unknown = fmt.write_return(good + [ReturnLine(999999, Decimal("1.00"), True)])
    with pytest.raises(ValidationFailed) as err:
        import_return(config, run["id"], unknown)
    assert "lines" in err.value.fields
    assert query(config, "SELECT count(*) FROM payment_line WHERE status != 'pending'")[0][0] == 0   # nothing written

    result = import_return(config, run["id"], fmt.write_return(good))
    assert (result["paid"], result["failed"], result["status"]) == (1, 1, "reconciled")
    assert outbox_types(config).count("payment_disbursed") == 1 and outbox_types(config).count("payment_failed") == 1
    with pytest.raises(Conflict):                                        # the same return file again
        import_return(config, run["id"], fmt.write_return(good))

    with caseworker(config) as rpc:                                           # the household gives a new account
        rpc.payments.set_payee({"case_id": "c2", "payee_name": "张三丰", "account_number": "6222029999888877"})
    with maker(config) as rpc:
        nxt = rpc.payments.create_run({"period": month(0), "area_type": "urban", "division_code": DISTRICT})
        detail = rpc.payments.get_run(nxt["id"])
    assert nxt["lines"] == 3 and nxt["carried"] == 1
    carried = [ln for ln in detail["lines_shown"] if ln["carried_from"]]
    assert [(c["case_id"], c["period"], c["amount"], c["account_masked"]) for c in carried] == [
        ("c2", month(-1), "333.33", "************8877")]


def test_jiangxia_pays_rural_quarterly_and_holds_back_without_checkin(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "jiangxia")
    period, months = quarter(-1)
    approve_cases(config, [
        case_approved("r1", months[0], "400.00", area_type="rural", community=VILLAGE, household_id="h-r1"),
        case_approved("r2", months[0], "250.00", area_type="rural", community=VILLAGE, household_id="h-r2"),
        case_approved("r3", months[1], "300.00", area_type="rural", community=VILLAGE, household_id="h-r3"),
        case_approved("u1", months[0], "500.00", household_id="h-u1")])
    for hh, ms in (("h-r1", months), ("h-r2", months[:2]), ("h-r3", months[1:]), ("h-u1", [months[2]])):
        for m in ms:
            publish(config, checkin(hh, m))
    wait_for(lambda: query(config, "SELECT count(*) FROM checkin")[0][0] == 8, message="check-ins")

    with maker(config) as rpc:
        with pytest.raises(ValidationFailed) as err:                     # jiangxia: rural pays by quarter
            rpc.payments.create_run({"period": months[0], "area_type": "rural", "division_code": DISTRICT})
        assert "quarter" in err.value.fields["period"][0]
        run = rpc.payments.create_run({"period": period, "area_type": "rural", "division_code": DISTRICT})
        detail = rpc.payments.get_run(run["id"])
        urban = rpc.payments.create_run({"period": months[2], "area_type": "urban", "division_code": DISTRICT})
    paid = {ln["case_id"]: (ln["months"], ln["amount"]) for ln in detail["lines_shown"]}
    # r1: three months; r3 approved into the 2nd month: two; r2 missed the 3rd check-in: held back
    assert paid == {"r1": (3, "1200.00"), "r3": (2, "600.00")}
    assert [(h["case_id"], h["reason"]) for h in detail["held_back"]] == [("r2", "no_checkin")]
    assert (urban["lines"], urban["total"]) == (1, "500.00")


def test_freeze_later_edits_change_only_later_runs(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    approve_cases(config, [case_approved("f1", month(-2), "600.00")])
    with maker(config) as rpc:
        run = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
    with checker(config) as rpc:
        rpc.payments.approve_run(run["id"])
    # after approval: review lowers the benefit from this month, the household changes its account
    publish(config, envelope("review", "case_adjusted", {"household_id": "hh-f1", "case_id": "f1"}, {
        "case_id": "f1", "household_id": "hh-f1", "community_code": COMMUNITY, "township_code": COMMUNITY[:9],
        "area_type": "urban", "household_size": 2, "old_benefit": "600.00", "new_benefit": "450.00",
        "direction": "lowered", "effective_month": month(0), "reason": "收入增加", "rule": "rereview",
        "benefit_gap": "450.00"}))
    ledger_case(config, "f1", check=lambda c: c["monthly_benefit"] == "450.00")
    with caseworker(config) as rpc:
        rpc.payments.set_payee({"case_id": "f1", "payee_name": "李四", "account_number": "6222021111222233"})
    content, _ = export(config, run["id"])
    (line,) = bank_lines(content)
    assert (line["amount"], line["payee_name"], line["account_number"]) == ("600.00", "张三丰", "622202000000000000")
    with maker(config) as rpc:
        later = rpc.payments.create_run({"period": month(0), "area_type": "urban", "division_code": DISTRICT})
        (nxt,) = rpc.payments.get_run(later["id"])["lines_shown"]
    assert (nxt["amount"], nxt["payee_name_masked"], nxt["account_masked"]) == ("450.00", "李*", "************2233")


def test_cancelled_case_is_paid_through_its_gradual_exit_then_stops(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    approve_cases(config, [case_approved("g1", month(-3), "300.00"), case_approved("g2", month(-3), "200.00")])
    for case_id, until in (("g1", month(-2)), ("g2", None)):
        publish(config, envelope("review", "case_cancelled", {"household_id": f"hh-{case_id}", "case_id": case_id}, {
            "case_id": case_id, "household_id": f"hh-{case_id}", "community_code": COMMUNITY,
            "township_code": COMMUNITY[:9], "area_type": "urban", "household_size": 2,
            "effective_month": month(-2), "reason": "收入超标", "rule": "rereview", "wrongly_included": False,
            "gradual_exit_until": until}))
        ledger_case(config, case_id, check=lambda c: c["status"] == "cancelled")
    with maker(config) as rpc:
        two_ago = rpc.payments.create_run({"period": month(-2), "area_type": "urban", "division_code": DISTRICT})
        last = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
        assert [ln["case_id"] for ln in rpc.payments.get_run(two_ago["id"])["lines_shown"]] == ["g1"]
    assert last["lines"] == 0 and last["held"] == 0


def test_duplicate_approval_delivery_gives_one_ledger_entry_and_one_payment(container_factory, sqlite_config):
    config = start(container_factory, sqlite_config, "national2021")
    env = case_approved("d1", month(-1), "700.00")
    publish(config, env)
    publish(config, env)                                                 # redelivered: same event id
    again = case_approved("d1", month(-1), "700.00")                     # replayed under a new id
    publish(config, again)
    approve_cases(config, [], payee=False)
    ledger_case(config, "d1")
    with caseworker(config) as rpc:
        rpc.payments.set_payee({"case_id": "d1", "payee_name": "王五", "account_number": "6222020000111122"})
    eventlet.sleep(1.0)
    assert query(config, "SELECT count(*) FROM ledger_case")[0][0] == 1
    assert query(config, "SELECT count(*) FROM inbox")[0][0] == 2
    with maker(config) as rpc:
        run = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
        same = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
        # an overlapping area (the community itself) finds the case already in a run for the period
        inner = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": COMMUNITY})
    assert same["id"] == run["id"] and run["lines"] == 1 and inner["lines"] == 0
    assert query(config, "SELECT count(*) FROM payment_line")[0][0] == 1


class Tally(DependencyProvider):
    """Counts the RPC workers each container ran (which replica served)."""

    served: dict = {}

    def worker_setup(self, worker_ctx):
        if worker_ctx.entrypoint.method_name == "create_run":
            Tally.served[id(self.container)] = Tally.served.get(id(self.container), 0) + 1


class CountedPayments(PaymentsService):
    tally = Tally()


def test_two_replicas_creating_the_same_run_concurrently_make_one_run(container_factory, config):
    config = dict(config, POLICY="national2021")
    Tally.served = {}
    replicas = [container_factory(CountedPayments, config) for _ in range(2)]
    for container in replicas:
        container.start()
    approve_cases(config, [case_approved(f"k{n}", month(-1), f"{100 + n}.00") for n in range(20)])

    def create(_):
        with maker(config) as rpc:
            return rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})

    runs = list(eventlet.GreenPool(8).imap(create, range(8)))
    assert len({r["id"] for r in runs}) == 1 and {r["lines"] for r in runs} == {20}
    assert query(config, "SELECT count(*) FROM payment_run")[0][0] == 1
    assert query(config, "SELECT count(*), count(DISTINCT case_id) FROM payment_line")[0] == (20, 20)
    assert len(Tally.served) == 2, f"both replicas should have served create_run: {Tally.served}"


def test_killed_service_loses_nothing_and_pays_once(container_factory, sqlite_config):
    """Approvals published while payments is down wait in its queue; a run
    prepared before the kill is the same run after the restart, prepared
    afresh (not yet approved) with the case approved meanwhile."""
    config = dict(sqlite_config, POLICY="national2021")
    first = container_factory(PaymentsService, config)
    first.start()
    approve_cases(config, [case_approved("s1", month(-1), "400.00")])
    with maker(config) as rpc:
        run = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
    first.kill()                                                         # no graceful stop
    late = case_approved("s2", month(-1), "300.00")
    publish(config, late)
    publish(config, late)                                                # and delivered twice
    second = container_factory(PaymentsService, config)
    second.start()
    ledger_case(config, "s2")
    with caseworker(config) as rpc:
        rpc.payments.set_payee({"case_id": "s2", "payee_name": "周七", "account_number": "6222020000333344"})
    with maker(config) as rpc:
        again = rpc.payments.create_run({"period": month(-1), "area_type": "urban", "division_code": DISTRICT})
        current = rpc.payments.create_run({"period": month(0), "area_type": "urban", "division_code": DISTRICT})
    assert again["id"] == run["id"] and again["lines"] == 2             # the same run, now with s2 too
    assert current["lines"] == 2
    assert query(config, "SELECT count(*) FROM ledger_case")[0][0] == 2
    assert query(config, "SELECT count(*) FROM payment_run")[0][0] == 2
    assert query(config, "SELECT count(*) FROM payment_line WHERE case_id = 's1'")[0][0] == 2   # two periods, once each
