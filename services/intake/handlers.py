"""Intake's command handlers: plain functions over a unit of work.

Each takes the unit of work, the acting ``Actor``, the loaded input and the
reference data; it checks the rules *before* writing, records its events,
and commits. The nameko service only loads, calls and dumps.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from services.intake import rules
from services.intake.models import (Application, Asset, CaseStatus, CheckIn, DocumentScan, FileDocument,
                                    HomeInvestigation, Household, Income, LabourAttendance, Member, Staff, new_id)
from shared.crypto import get_cipher
from shared.db import UnitOfWork, is_id
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.events import Event
from shared.identity import Actor, Role
from shared.identity import authorize as require
from shared.jurisdiction import get_within, within
from shared.reference import ReferenceData
from shared.staff import apply_identity_event, staff_member, staff_within

SOURCE = "intake"
CASEWORKERS = (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER, Role.DISTRICT_OFFICER)
READERS = CASEWORKERS + (Role.CENTRE_DIRECTOR, Role.DEPUTY_DIRECTOR, Role.AUDITOR, Role.TOWNSHIP_COMMITTEE,
                         Role.COMMUNITY_PANEL, Role.SERVICE)   # SERVICE: review's and notify's reads


def now() -> datetime:
    return datetime.now(timezone.utc)


def resident_index(resident_id: str) -> str:
    return get_cipher("intake").blind_index(resident_id, "resident_id")


# --- staff (the registry, from identity's events: shared/staff.py) -------------

def identity_event(uow: UnitOfWork, env: dict) -> None:
    apply_identity_event(uow, env, Staff)


def list_staff(uow: UnitOfWork, actor: Actor, unit_code: str) -> list[dict]:
    require(actor, READERS, unit_code)
    return staff_within(uow.session, Staff, unit_code)


# --- households --------------------------------------------------------------

def _members_and_incomes(actor: Actor, household: Household, data: dict, session) -> None:
    indexes = [resident_index(m["resident_id"]) for m in data["members"]]
    with session.no_autoflush:  # nothing of this household needs to be written to answer
        clash = session.execute(
            sa.select(Member.resident_id_index, Member.household_id, Household.community_code)
            .join(Household, Household.id == Member.household_id)
            .where(Member.resident_id_index.in_(indexes), Member.household_id != household.id)
        ).first()
    if clash:
        n = indexes.index(clash[0])
        details = {"field": f"members.{n}.resident_id"}
        if actor.covers(clash[2]):   # another jurisdiction's household is not named (nor its community)
            details["household_id"] = clash[1]
        raise Conflict("this person is already a member of another household", details)
    # A member keeps its id across updates (labour records, investigations and
    # events refer to it): members are matched by ID number, changed in place,
    # and only those no longer listed are removed.
    existing = {m.resident_id_index: m for m in household.members}
    removed = [m.id for index, m in existing.items() if index not in indexes]
    if removed:
        recorded = session.scalar(sa.select(LabourAttendance.member_id)
                                  .where(LabourAttendance.member_id.in_(removed)).limit(1))
        if recorded:
            raise Conflict("a member with public-welfare labour records cannot be removed from the household",
                           {"field": "members", "member_id": recorded})
    household.incomes.clear()
    household.assets.clear()
    members = []
    for pos, (m, index) in enumerate(zip(data["members"], indexes)):
        member = existing.get(index) or Member(id=new_id(), resident_id_index=index)
        member.position, member.name, member.resident_id = pos, m["name"], m["resident_id"]
        member.relation, member.birth_date, member.sex = m["relation"], m["birth_date"], m["sex"]
        member.labour_capacity, member.disability = m["labour_capacity"], m["disability"]
        member.illness, member.employment = m["illness"], m["employment"]
        members.append(member)
        if m["relation"] == "head":
            household.head_name = m["name"]
    household.members[:] = members   # the ones no longer listed go (delete-orphan)
    for inc in data["incomes"]:
        member = members[inc["member"]] if inc["member"] is not None else None
        household.incomes.append(Income(member=member, source=inc["source"],
                                        monthly_amount=inc["monthly_amount"]))
    for asset in data["assets"]:
        household.assets.append(Asset(kind=asset["kind"], description=asset["description"], value=asset["value"]))


def register_household(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> Household:
    community = ref.division(data["community_code"], "community_code", "community")
    require(actor, CASEWORKERS, community.code)
    township = ref.divisions.get(community.parent)
    area_type = data["area_type"] or community.area_type or "urban"
    stamp = now()
    head = next(m["name"] for m in data["members"] if m["relation"] == "head")
    # ids are made here and the collections start empty, so nothing is read
    # back or flushed before the one INSERT per row at commit
    household = Household(id=new_id(), head_name=head, address=data["address"], phone=data["phone"],
                          community_code=community.code, township_code=township.code,
                          district_code=township.parent, area_type=area_type,
                          registered_at=stamp, registered_by=actor.user, updated_at=stamp,
                          members=[], incomes=[], assets=[], documents=[])
    uow.session.add(household)
    _members_and_incomes(actor, household, data, uow.session)
    household.record(Event(SOURCE, "household_registered", {"household_id": household.id}, {
        "community_code": household.community_code, "township_code": household.township_code,
        "district_code": household.district_code, "area_type": area_type,
        "member_count": len(household.members)}))
    uow.commit()
    return household


def load_household(uow: UnitOfWork, actor: Actor, roles, household_id: str) -> Household:
    """The household, for an actor of ``roles`` whose jurisdiction covers it
    (to anyone else it does not exist: shared/jurisdiction.py)."""
    return get_within(uow, actor, roles, Household, household_id, "household", "household_id")


def update_household(uow: UnitOfWork, actor: Actor, household_id: str, data: dict, ref: ReferenceData) -> Household:
    household = load_household(uow, actor, CASEWORKERS, household_id)
    if data["community_code"] != household.community_code:
        raise Conflict("moving a household to another community is a transfer, not an update",
                       {"field": "community_code"})
    household.address, household.phone = data["address"], data["phone"]
    if data["area_type"]:
        household.area_type = data["area_type"]
    _members_and_incomes(actor, household, data, uow.session)
    household.version += 1
    household.updated_at = now()
    household.record(Event(SOURCE, "household_updated", {"household_id": household.id}, {
        "community_code": household.community_code, "version": household.version,
        "member_count": len(household.members), "changed": ["members", "incomes", "assets"]}))
    uow.commit()
    return household


def view_household(uow: UnitOfWork, actor: Actor, household_id: str, purpose: str = "view") -> Household:
    """Read a household's file; the read itself is recorded (file_viewed)."""
    household = load_household(uow, actor, READERS, household_id)
    uow.emit(Event(SOURCE, "file_viewed", {"household_id": household.id},
                   {"purpose": purpose, "community_code": household.community_code}))
    uow.commit()
    return household


def find_by_resident_id(uow: UnitOfWork, actor: Actor, resident_id: str) -> Household:
    """The household of the member with this ID number, within the actor's
    jurisdiction: "not registered" and "registered elsewhere" are one answer."""
    require(actor, READERS)
    found = uow.session.execute(
        sa.select(Member.household_id, Household.community_code)
        .join(Household, Household.id == Member.household_id)
        .where(Member.resident_id_index == resident_index(resident_id))).first()
    within(actor, found.community_code if found else None,
           NotFound("no household in your jurisdiction has a member with this resident ID number"))
    return view_household(uow, actor, found.household_id, purpose="lookup")


# --- applications and investigations ----------------------------------------

def submit_application(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> Application:
    household = load_household(uow, actor, CASEWORKERS, data["household_id"])
    if data["accepted_on"] > ref.today():
        raise ValidationFailed.field("accepted_on", "in the future")
    open_count = uow.session.scalar(
        sa.select(sa.func.count()).select_from(Application)
        .where(Application.household_id == household.id, Application.status.in_(("submitted", "investigated"))))
    rules.application_may_open(open_count)
    counted = ref.policy.investigation_start_deadline(data["accepted_on"], ref.calendar)
    deadline = counted.day if counted else None
    application = Application(household_id=household.id, community_code=household.community_code,
                              accepted_on=data["accepted_on"], accepted_by=actor.user, reason=data["reason"],
                              investigation_deadline=deadline,
                              investigation_deadline_provisional=bool(counted and counted.provisional),
                              policy=ref.policy.name, submitted_at=now())
    uow.session.add(application)
    uow.session.flush()
    application.record(Event(SOURCE, "application_submitted",
                             {"household_id": household.id, "application_id": application.id}, {
                                 "community_code": household.community_code,
                                 "township_code": household.township_code, "area_type": household.area_type,
                                 "accepted_on": application.accepted_on, "investigation_deadline": deadline,
                                 "policy": ref.policy.name, "member_count": len(household.members)}))
    uow.commit()
    return application


def load_application(uow: UnitOfWork, actor: Actor, roles, application_id: str,
                     with_investigations: bool = False) -> Application:
    """The application, for an actor of ``roles`` whose jurisdiction covers it."""
    options = [joinedload(Application.investigations)] if with_investigations else []
    return get_within(uow, actor, roles, Application, application_id, "application", "application_id",
                      options=options)


def applicant_matches(uow: UnitOfWork, actor: Actor, data: dict) -> Application:
    """The public status page's check (the gateway's own identity asks it):
    the application whose applicant's (the head's) resident ID ends with
    ``id_last4``. A wrong pair is the same NotFound as an unknown number, so
    the answer tells nothing about which one was wrong."""
    require(actor, (Role.SERVICE,))
    answer = NotFound.of("application", "?", "application_id")
    application = uow.session.get(Application, data["application_id"]) if is_id(data["application_id"]) else None
    if application is None:
        hmac.compare_digest("0000", data["id_last4"].upper())   # about as long as a real check
        raise answer
    head = next((m for m in application.household.members if m.relation == "head"), None)
    given = data["id_last4"].upper()
    if head is None or not hmac.compare_digest(head.resident_id[-4:].upper(), given):
        raise answer
    return application


def record_investigation(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> HomeInvestigation:
    application = load_application(uow, actor, CASEWORKERS, data["application_id"])
    household = application.household
    if application.status not in ("submitted", "investigated"):
        raise Conflict(f"application is {application.status}; it takes no investigation",
                       {"status": application.status})
    rules.investigation_date_is_possible(data["investigated_on"], application.accepted_on, ref.today())
    users = [i["user"] for i in data["investigators"]]
    staff = {user: staff_member(uow.session, Staff, user) for user in set(users)}
    investigators = rules.investigators_are_distinct_staff(data["investigators"], staff,
                                                           household.community_code, ref.policy)
    member_ids = {m.id for m in household.members}
    signed = rules.family_signature_present(data["family_signatures"], member_ids, ref.policy)
    for n, inc in enumerate(data["verified_incomes"]):
        if inc["member_id"] is not None and inc["member_id"] not in member_ids:
            raise ValidationFailed.field(f"verified_incomes.{n}.member_id", "not a member of this household")
    income = sum((i["monthly_amount"] for i in data["verified_incomes"]), Decimal("0.00"))
    assets = sum((a["value"] for a in data["verified_assets"]), Decimal("0.00"))
    late = bool(application.investigation_deadline and data["investigated_on"] > application.investigation_deadline)
    names = {m.id: m.name for m in household.members}
    detail = {
        "incomes": [{"member_id": i["member_id"], "source": i["source"], "monthly_amount": str(i["monthly_amount"])}
                    for i in data["verified_incomes"]],
        "assets": [{"kind": a["kind"], "description": a["description"], "value": str(a["value"])}
                   for a in data["verified_assets"]],
    }
    investigation = HomeInvestigation(
        application_id=application.id, household_id=household.id, investigated_on=data["investigated_on"],
        investigators=investigators, family_signatures=[{"member_id": m, "name": names[m]} for m in signed],
        findings=data["findings"], verified_monthly_income=income, verified_assets_value=assets,
        verified_detail=json.dumps(detail), started_late=late, recorded_at=now(), recorded_by=actor.user)
    uow.session.add(investigation)
    application.status = "investigated"
    uow.session.flush()
    investigation.record(Event(SOURCE, "investigation_recorded", {
        "household_id": household.id, "application_id": application.id, "investigation_id": investigation.id}, {
        "community_code": household.community_code, "investigated_on": investigation.investigated_on,
        "investigators": [{"user": i["user"], "name": i["name"]} for i in investigators],
        "family_signed": bool(signed), "started_late": late, "member_count": len(household.members)}))
    uow.commit()
    return investigation


# --- the household file (一户一档) -------------------------------------------

def register_document(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> FileDocument:
    household = load_household(uow, actor, CASEWORKERS, data["household_id"])
    if data["document_date"] > ref.today():
        raise ValidationFailed.field("document_date", "in the future")
    doc = FileDocument(household_id=household.id, kind=data["kind"], title=data["title"],
                       document_date=data["document_date"], reference=data["reference"],
                       registered_by=actor.user, registered_at=now())
    uow.session.add(doc)
    uow.session.flush()
    uow.emit(Event(SOURCE, "document_registered", {"household_id": household.id, "document_id": doc.id},
                   {"kind": doc.kind, "document_date": doc.document_date, "reference": doc.reference}))
    uow.commit()
    return doc


def attach_scan(uow: UnitOfWork, actor: Actor, data: dict, files, today) -> DocumentScan:
    """扫描件: a filed document's scan, sealed on disk (services/intake/scans.py);
    the row is committed only once the file is in place."""
    require(actor, CASEWORKERS)
    document = uow.session.get(FileDocument, data["document_id"])
    if document is None:
        raise NotFound("no such document", {"document_id": data["document_id"]})
    household = load_household(uow, actor, CASEWORKERS, document.household_id)   # outside: as if missing
    content_type = rules.scan_is_an_accepted_file(data["content_type"], data["content"], files.max_bytes)
    scan = DocumentScan(id=new_id(), document_id=document.id, household_id=household.id,
                        content_type=content_type, size=len(data["content"]),
                        sha256=hashlib.sha256(data["content"]).hexdigest(), uploaded_by=actor.user,
                        uploaded_at=now())
    uow.session.add(scan)
    uow.emit(Event(SOURCE, "document_scanned", {"household_id": household.id, "document_id": document.id,
                                                "scan_id": scan.id},
                   {"content_type": content_type, "size": scan.size, "community_code": household.community_code}))
    files.write(scan.id, data["content"])
    try:
        uow.commit()
    except Exception:
        files.remove(scan.id)
        raise
    return scan


def scans_of(uow: UnitOfWork, household_id: str) -> dict[str, list[DocumentScan]]:
    found: dict[str, list[DocumentScan]] = {}
    for scan in uow.session.scalars(sa.select(DocumentScan).where(DocumentScan.household_id == household_id)
                                    .order_by(DocumentScan.uploaded_at)):
        found.setdefault(scan.document_id, []).append(scan)
    return found


def read_scan(uow: UnitOfWork, actor: Actor, scan_id: str, files) -> tuple[DocumentScan, bytes]:
    """A scan for a reader of its household; the read is recorded (file_viewed, purpose scan)."""
    require(actor, READERS)
    scan = uow.session.get(DocumentScan, scan_id)
    if scan is None:
        raise NotFound("no such scan", {"scan_id": scan_id})
    household = load_household(uow, actor, READERS, scan.household_id)
    content = files.read(scan.id)
    uow.emit(Event(SOURCE, "file_viewed", {"household_id": household.id},
                   {"purpose": "scan", "community_code": household.community_code}))
    uow.commit()
    return scan, content


def file_report(uow: UnitOfWork, actor: Actor, household_id: str) -> dict:
    household = load_household(uow, actor, READERS, household_id)
    stages = ["registered"]
    statuses = set(uow.session.scalars(sa.select(Application.status).where(Application.household_id == household_id)))
    if statuses:
        stages.append("applied")
    if "investigated" in statuses:
        stages.append("investigated")
    report = rules.file_completeness(stages, [d.kind for d in household.documents])
    report.update({"household_id": household.id, "stages": stages, "documents": len(household.documents)})
    return report


# --- monthly check-ins and labour ----------------------------------------------

def record_checkin(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> CheckIn:
    household = load_household(uow, actor, (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER), data["household_id"])
    rules.checkin_month_not_future(data["month"], data["checked_in_on"], ref.today())
    cases = list(uow.session.scalars(sa.select(CaseStatus).where(CaseStatus.household_id == household.id)))
    rules.checkin_case_not_cancelled(data["month"], cases)
    exists = uow.session.scalar(sa.select(CheckIn.id).where(CheckIn.household_id == household.id,
                                                           CheckIn.month == data["month"]))
    if exists:
        raise Conflict(f"the check-in for {data['month']} is already recorded", {"field": "month"})
    checkin = CheckIn(household_id=household.id, month=data["month"], checked_in_on=data["checked_in_on"],
                      recorded_by=actor.user)
    uow.session.add(checkin)
    uow.emit(Event(SOURCE, "checkin_recorded", {"household_id": household.id}, {
        "community_code": household.community_code, "month": data["month"],
        "checked_in_on": data["checked_in_on"]}))
    uow.commit()
    return checkin


def record_labour(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> LabourAttendance:
    household = load_household(uow, actor, (Role.COMMUNITY_OFFICER, Role.TOWNSHIP_OFFICER), data["household_id"])
    if data["member_id"] not in {m.id for m in household.members}:
        raise ValidationFailed.field("member_id", "not a member of this household")
    if data["labour_date"] > ref.today():
        raise ValidationFailed.field("labour_date", "in the future")
    exists = uow.session.scalar(sa.select(LabourAttendance.id).where(
        LabourAttendance.member_id == data["member_id"], LabourAttendance.labour_date == data["labour_date"],
        LabourAttendance.activity == data["activity"]))
    if exists:
        raise Conflict("this attendance is already recorded", {"field": "labour_date"})
    record = LabourAttendance(household_id=household.id, member_id=data["member_id"],
                              labour_date=data["labour_date"], activity=data["activity"],
                              attendance=data["attendance"], recorded_by=actor.user)
    uow.session.add(record)
    uow.emit(Event(SOURCE, "labour_recorded", {"household_id": household.id, "member_id": data["member_id"]}, {
        "community_code": household.community_code, "labour_date": data["labour_date"],
        "activity": data["activity"], "attendance": data["attendance"]}))
    uow.commit()
    return record


def record_death(uow: UnitOfWork, actor: Actor, data: dict, ref: ReferenceData) -> Member:
    """A member's death, recorded as a fact: the household's size changes
    (household_updated) and the review acts on it (member_died)."""
    household = load_household(uow, actor, CASEWORKERS, data["household_id"])
    member = next((m for m in household.members if m.id == data["member_id"]), None)
    if member is None:
        raise ValidationFailed.field("member_id", "not a member of this household")
    if member.deceased_on is not None:
        raise Conflict(f"the death of this member is already recorded ({member.deceased_on})",
                       {"field": "member_id"})
    if data["died_on"] > ref.today():
        raise ValidationFailed.field("died_on", "in the future")
    if data["died_on"] < member.birth_date:
        raise ValidationFailed.field("died_on", "before the member was born")
    member.deceased_on = data["died_on"]
    household.version += 1
    household.updated_at = now()
    living = sum(1 for m in household.members if m.deceased_on is None)
    household.record(Event(SOURCE, "member_died", {"household_id": household.id, "member_id": member.id}, {
        "community_code": household.community_code, "died_on": data["died_on"], "living_members": living}))
    household.record(Event(SOURCE, "household_updated", {"household_id": household.id}, {
        "community_code": household.community_code, "version": household.version,
        "member_count": living, "changed": ["members"]}))
    uow.commit()
    return member


# --- what intake knows of cases (review's events) --------------------------------------

def case_approved(uow: UnitOfWork, event: dict) -> None:
    case_id = event["subject"]["case_id"]
    if uow.session.get(CaseStatus, case_id) is None:
        uow.session.add(CaseStatus(case_id=case_id, household_id=event["subject"]["household_id"],
                                   status="active", start_month=event["payload"]["start_month"]))


def case_cancelled(uow: UnitOfWork, event: dict) -> None:
    case_id = event["subject"]["case_id"]
    case = uow.session.get(CaseStatus, case_id)
    if case is None:   # the cancellation overtook the approval: both facts are known here
        case = CaseStatus(case_id=case_id, household_id=event["subject"]["household_id"], start_month="0000-00")
        uow.session.add(case)
    case.status, case.end_month = "cancelled", event["payload"]["effective_month"]
