"""The broker users' permission regexes (shared/broker.py) say what the
attack tests (tests/integration/test_bus_boundary.py) find the broker doing."""
import re

import pytest

from shared.broker import UUID_KEY, permissions, rpc_topic_permissions, service_permissions

UUID = "0b8e2c6a-1f3d-4a5b-9c7d-2e4f6a8b0c1d"
assert re.fullmatch(UUID_KEY, UUID)


def allowed(regex: str, name: str) -> bool:
    return re.search(regex, name) is not None


def test_a_service_writes_only_to_its_own_exchanges_and_never_to_the_default_one():
    write = service_permissions("review")["write"]
    for name in ("review.events", "review.partner-events", "nameko-rpc", "dibao.retry", "dibao.park"):
        assert allowed(write, name), name
    for name in ("payments.events", "intake.partner-events", "amq.default", "", "dibao.audit", "dibao.dead-letter",
                 "evt-review-case_approved--payments.on_case_approved", "rpc-payments", "xreview.events"):
        assert not allowed(write, name), name


def test_a_service_declares_and_reads_only_its_own_queues():
    perms = service_permissions("payments")
    own = ("rpc-payments", f"rpc.reply-payments-{UUID}", "evt-review-case_approved--payments.on_case_approved",
           "evt-review-case_approved--payments.on_case_approved.delay")
    others = ("rpc-intake", f"rpc.reply-intake-{UUID}", "evt-review-case_approved--intake.on_case_approved",
              "dibao.audit", "dibao.dead-letter", "review.events", "spy", "rpc-payments-spy")
    for name in own:
        assert allowed(perms["configure"], name) and allowed(perms["read"], name), name
    for name in others:
        assert not allowed(perms["configure"], name), name
    for name in ("rpc-intake", f"rpc.reply-intake-{UUID}", "evt-review-case_approved--intake.on_case_approved",
                 "dibao.audit", "spy"):
        assert not allowed(perms["read"], name), name
    assert allowed(service_permissions("audit")["read"], "dibao.audit")
    assert not allowed(perms["configure"], "review.events")       # exchanges are declared at deploy time


def test_no_one_may_bind_rpc_with_a_wildcard_or_another_services_key():
    for who, serves in (("intake", True), ("cli", False)):
        read = rpc_topic_permissions(who, serves)["read"]
        for key in ("#", "*.*", "payments.*", "payments.get_case", "*", UUID, "rpc.*", "rpc.#",
                    f"rpc.reply-payments-{UUID}", f"rpc.reply-{who}x-{UUID}", f"rpc.reply-{who}-{UUID}.x"):
            assert not allowed(read, key), (who, key)
        assert allowed(read, f"rpc.reply-{who}-{UUID}")           # its own reply queue, by its name
    assert allowed(rpc_topic_permissions("intake", True)["read"], "intake.*")
    assert not allowed(rpc_topic_permissions("cli", False)["read"], "cli.*")


def test_anyone_with_rpc_publishes_requests_and_replies_to_any_caller():
    write = rpc_topic_permissions("payments", True)["write"]
    for key in ("intake.get_household", f"rpc.reply-cli-{UUID}", f"rpc.reply-gateway-{UUID}", UUID):
        assert allowed(write, key), key
    for key in ("#", "intake.*", f"rpc.reply-cli-{UUID}.x", "not-allowed"):
        assert not allowed(write, key), key


def test_no_one_may_declare_or_delete_an_exchange():
    for who in ("intake", "audit", "gateway", "cli"):
        configure = permissions(who)["configure"]
        for name in ("nameko-rpc", f"{who}.events", "review.events", "dibao.retry", "dibao.park", "amq.topic"):
            assert not allowed(configure, name), (who, name)
    assert allowed(permissions("cli")["configure"], f"rpc.reply-cli-{UUID}")
    assert not allowed(permissions("cli")["configure"], f"rpc.reply-intake-{UUID}")


def test_the_tools_read_the_dead_letter_queue_and_publish_nothing_but_rpc():
    perms = permissions("cli")
    assert allowed(perms["read"], "dibao.dead-letter")
    for name in ("review.events", "dibao.retry", "dibao.park", "amq.default", ""):
        assert not allowed(perms["write"], name), name


def test_partner_add_makes_the_queues_nameko_will_consume_by_default_or_as_told():
    from shared.rabbit_admin import partner_handlers

    receives = {"review": ["case_approved", "review_due"], "payments": ["standard_changed"]}
    assert partner_handlers(receives, "finance_bureau") == [
        ("payments", "standard_changed", "evt-payments-standard_changed--finance_bureau.on_standard_changed"),
        ("review", "case_approved", "evt-review-case_approved--finance_bureau.on_case_approved"),
        ("review", "review_due", "evt-review-review_due--finance_bureau.on_review_due")]
    told = partner_handlers(receives, "czj", ["review.case_approved", "review.review_due=remind",
                                              "review.case_approved=other_svc.approved"])
    assert [q for _, _, q in told] == ["evt-review-case_approved--czj.on_case_approved",
                                       "evt-review-review_due--czj.remind",
                                       "evt-review-case_approved--other_svc.approved"]
    for bad in ("review.notice_requested", "review", "review.case_approved=a.b.c", "review.case_approved=x-y"):
        with pytest.raises(ValueError):
            partner_handlers(receives, "czj", [bad])
