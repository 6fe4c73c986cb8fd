"""The whole entry (进口) with the real services — intake, review, notify —
over real RabbitMQ, under each policy: from the application to the case,
with notices posted and closed by notify, and an objection that sends the
household back to a home investigation."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.review.service import ReviewService
from shared.identity import Role
from shared.policy import load_policy
from shared.testing import rpc_as, wait_for
from tests.helpers import COMMUNITY, DISTRICT, household, investigation, officer, register_staff
from tests.review_helpers import committee, community, deputy, director, evaluation, review_state, township

pytestmark = pytest.mark.integration


def district(config):
    return rpc_as(config, Role.DISTRICT_OFFICER, DISTRICT, user="zhao.district", name="赵专干")


def sysadmin(config):
    """Closes the notices as of a later day (the test's clock moves on)."""
    return rpc_as(config, Role.SYSTEM_ADMIN, DISTRICT, user="sys.admin", name="系统管理员")


SEEN_NOTICES: set = set()


def pass_notice(config, app_id, step):
    """Wait for notify to post this step's (new) notice, then move past its period."""
    def posted():
        with district(config) as rpc:
            return [n for n in rpc.notify.list_notices(DISTRICT) if n["application_id"] == app_id
                    and n["stage"] == step and n["id"] not in SEEN_NOTICES]
    SEEN_NOTICES.update(n["id"] for n in wait_for(posted, timeout=20, message=f"{step} posted"))
    with sysadmin(config) as rpc:
        rpc.notify.close_due_notices((date.today() + timedelta(days=31)).isoformat())


def take_step(config, app_id, step):
    kind = load_policy(config["POLICY"]).step(step).kind
    if kind == "evaluation":
        with community(config) as rpc:
            rpc.review.record_evaluation(evaluation(app_id))
    elif kind == "notice":
        pass_notice(config, app_id, step)
    elif kind == "committee":
        with township(config) as rpc:
            rpc.review.record_township_review(committee(app_id))
    elif kind == "initial_opinion":
        with township(config) as rpc:
            rpc.review.record_township_review({"application_id": app_id, "passed": True, "remarks": "同意",
                                               "meeting_date": date.today().isoformat()})
    elif kind == "joint_review":
        with deputy(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "deputy_director"})
        with director(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "centre_director"})
        with community(config) as rpc:
            rpc.review.sign_joint_review({"application_id": app_id, "role": "investigator"})


@pytest.mark.parametrize("policy", ["jiangxia", "national2021"])
def test_application_to_case_through_every_step_of_the_policy(container_factory, sqlite_config, policy):
    config = dict(sqlite_config, POLICY=policy)
    for service in (IntakeService, ReviewService, NotifyService):
        container_factory(service, config).start()
    register_staff(config)
    data = household(seed=61)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": (date.today() - timedelta(days=1)).isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    app_id = app["id"]

    steps = [s.name for s in load_policy(policy).review_steps]
    # an objection during the first notice sends it back to a home investigation
    first_notice = next(s.name for s in load_policy(policy).review_steps if s.kind == "notice")
    for step in steps[:steps.index(first_notice)]:
        review_state(config, app_id, step=step)
        take_step(config, app_id, step)
    review_state(config, app_id, step=first_notice)
    notice = wait_for(lambda: _notice(config, app_id, first_notice), timeout=20, message="notice posted")
    SEEN_NOTICES.add(notice["id"])
    with community(config) as rpc:
        rpc.notify.file_objection({"notice_id": notice["id"], "text": "该户有子女在外务工，收入未如实申报",
                                   "anonymous": True})
    review_state(config, app_id, status="awaiting_reinvestigation")
    with officer(config) as rpc:
        rpc.intake.record_investigation(investigation(app_id, created["member_ids"], findings="异议核查"))

    for step in steps:
        review_state(config, app_id, step=step)
        take_step(config, app_id, step)
    final = review_state(config, app_id, status="approved")
    assert final["objections"] == 1 and final["case"]["monthly_benefit"]

    def result_posted():
        with district(config) as rpc:
            return [n for n in rpc.notify.list_notices(DISTRICT) if n["application_id"] == app_id
                    and n["stage"] == "result"]
    [result] = wait_for(result_posted, timeout=20, message="result published")
    assert result["monthly_benefit"] == final["case"]["monthly_benefit"]
    assert data["members"][0]["resident_id"] not in repr(result)


def _notice(config, app_id, stage):
    with district(config) as rpc:
        found = [n for n in rpc.notify.list_notices(COMMUNITY[:6]) if n["application_id"] == app_id
                 and n["stage"] == stage]
    return found[0] if found else None


def test_without_the_notice_font_the_review_goes_on_and_the_pdf_follows_the_font(container_factory, sqlite_config,
                                                                                  tmp_path):
    """No CJK font (NOTICE_FONT points at nothing): the boards' HTML is written,
    the application reaches approval, notify's health lists the PDF problem,
    and once the font is there the timer makes the PDF."""
    import shutil

    from tests.integration.test_calendar import dibao

    installed = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")
    assert installed.is_file(), "fonts-wqy-zenhei is a DEB_PACKAGES entry: `make sysdeps` installs it"
    font = tmp_path / "fonts" / "wqy-zenhei.ttc"
    config = dict(sqlite_config, POLICY="jiangxia", NOTICE_FONT=str(font), NOTICE_CHECK_SECONDS=0.5)
    for service in (IntakeService, ReviewService, NotifyService):
        container_factory(service, config).start()
    register_staff(config)
    data = household(seed=62)
    with officer(config) as rpc:
        created = rpc.intake.register_household(data)
        app = rpc.intake.submit_application({"household_id": created["household_id"],
                                             "accepted_on": (date.today() - timedelta(days=1)).isoformat()})
        rpc.intake.record_investigation(investigation(app["id"], created["member_ids"]))
    for step in [s.name for s in load_policy("jiangxia").review_steps]:
        review_state(config, app["id"], step=step)
        take_step(config, app["id"], step)
    assert review_state(config, app["id"], status="approved")["case"]

    with officer(config) as rpc:
        board = rpc.notify.render_board(COMMUNITY)
    assert board["html"] and Path(board["html"]).is_file() and board["pdf"] is None
    assert [(p["kind"], p["code"]) for p in board["problems"]] == [("board_pdf", "font_missing")]
    assert "fonts-wqy-zenhei" in board["problems"][0]["detail"]
    with sysadmin(config) as rpc:
        problems = rpc.notify.ping()["problems"]
    assert {(p["kind"], p["target"], p["code"]) for p in problems} >= {("board_pdf", COMMUNITY, "font_missing")}
    health = dibao(tmp_path, config, "health", "notify")
    assert health.exit_code == 0 and "font_missing" in health.output and "problem" in health.output

    font.parent.mkdir(parents=True)
    shutil.copyfile(installed, font)                   # the font is back: the timer retries

    def made():
        with sysadmin(config) as rpc:
            return not rpc.notify.ping()["problems"]

    wait_for(made, timeout=20, message="the PDF made once the font is back")
    assert (Path(config["DATA_DIR"]) / "notices" / f"{COMMUNITY}.pdf").is_file()
