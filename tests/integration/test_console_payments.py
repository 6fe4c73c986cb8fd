"""The console's payments pages in headless Chromium, over real RabbitMQ: a
payment run prepared by one login and approved by another; the same login
approving is refused on the page (maker ≠ checker); the bank file is a
download with Content-Disposition (no account number in any URL or page);
the bank's return file uploaded on the page reconciles the run.
"""
from __future__ import annotations

import re

import pytest
import requests

from tests.browser_helpers import fresh, start_console
from tests.identity_helpers import add_person, bootstrap_admin, code
from tests.payments_helpers import DISTRICT, approve_cases, bank_lines, case_approved, month

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RUN_PATH = re.compile(r"^/payments/runs/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_a_run_prepared_by_one_login_is_approved_by_another_and_the_preparer_is_refused(
        container_factory, sqlite_config, browser, tmp_path):
    from services.payments.service import PaymentsService

    config, base = start_console(container_factory, dict(sqlite_config, POLICY="national2021"),
                                 extra=(PaymentsService,))
    admin = bootstrap_admin(config)
    finance = add_person(config, admin, "qian.finance", ["finance_officer"], unit=DISTRICT, name="钱会计")
    director = add_person(config, admin, "zhou.director", ["centre_director"], unit=DISTRICT, name="周主任")
    approve_cases(config, [case_approved("c1", month(-2), "812.50"), case_approved("c2", month(-2), "333.33", size=1)])

    console = fresh(browser, base)
    console.login("qian.finance", finance.password, code(finance.totp_secret))
    console.find('nav.main a[href="/payments/runs"]').click()
    console.wait_path(lambda p: p == "/payments/runs")
    console.fill("#period", month(-1)).fill("#division_code", DISTRICT).submit("#prepare")
    console.wait_path(lambda p: RUN_PATH.match(p) is not None)
    run_path = console.path
    assert console.find("#run").get_attribute("data-status") == "prepared"
    assert "qian.finance" in console.text("#prepared-by")
    assert "1,145.83" in console.text("#run-total")                  # 812.50 + 333.33
    console.screenshot("payment-run")

    console.submit("#approve")                                        # the preparer approving: refused on the page
    console.wait_path(lambda p: p.endswith("/approval"))
    assert "经办与审批分离" in console.text("#refusal")
    assert console.find("#run").get_attribute("data-status") == "prepared"
    console.screenshot("payment-run-refused")
    console.logout()

    console.login("zhou.director", director.password, code(director.totp_secret))
    assert "待审批的发放批次" in console.text()                        # the worklist shows the run waiting
    console.open(run_path).submit("#approve")
    console.wait_path(lambda p: p.endswith("/approval"))
    assert console.find("#run").get_attribute("data-status") == "approved"
    assert "zhou.director" in console.text("#approved-by")
    source = console.driver.page_source
    assert "622202000000000000" not in source and "6222020000000000001" not in source   # accounts masked

    # the bank file: a POST form answered as a download; the account numbers are in the file only
    cookies = {c["name"]: c["value"] for c in console.driver.get_cookies()}
    csrf = console.find('#bank-file-form input[name="csrf_token"]').get_attribute("value")
    action = console.find("#bank-file-form").get_attribute("action")
    assert "6222" not in action
    answer = requests.post(action, data={"csrf_token": csrf, "format": "csv"}, cookies=cookies, timeout=30)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["Content-Disposition"].startswith("attachment; filename=dibao-")
    lines = bank_lines(answer.content)
    assert sorted(ln["account_number"] for ln in lines) == ["622202000000000000", "622202000000000001"]
    refused = requests.post(action, data={"format": "csv"}, cookies=cookies, timeout=30)    # no CSRF token
    assert refused.status_code == 403

    # the bank's return file, uploaded on the page: one paid, one failed
    returned = tmp_path / "return.csv"
    rows = ["line_id,amount,result,reason,value_date"]
    for n, ln in enumerate(lines):
        rows.append(f"{ln['line_id']},{ln['amount']},{'paid' if n == 0 else 'failed'},"
                    f"{'' if n == 0 else '账户冻结'},{month(0)}-03")
    total = sum(float(ln["amount"]) for ln in lines)
    rows.append(f"TOTAL,{len(lines)},{total:.2f},,")
    returned.write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    console.open(run_path)
    assert console.find("#run").get_attribute("data-status") == "exported"
    console.find("#return-file").send_keys(str(returned))
    console.submit("#reconcile")
    console.wait_path(lambda p: p.endswith("/return"))
    result = console.text("#reconciliation")
    assert "已发放\n1" in result and "失败\n1" in result, result
    assert "账户冻结" in console.text("#lines")
    console.screenshot("payment-reconciled")
    console.open("/payments/standards")
    assert "保障标准" in console.text()
