"""What notify shows people: the notice boards and the short messages sent
to households.

A unit's board is files under ``DATA_DIR/notices/``, written per notice plus
an index (not the whole board again for every notice posted):

- ``<unit>/<notice id>.pdf`` — the notice's own printable A4 sheet, written
  once when it is posted (a notice never changes), removed when it closes;
- ``<unit>.html`` — the index: every notice up on the board now, as the
  sheets print it, each linking its sheet; rewritten (a cheap page, no PDF)
  on every notice posted or closed;
- ``<unit>.pdf`` — the whole board on one printable sheet, made on demand
  (``render_board``, the public page's link, the timer's retry) and removed
  whenever the index changes, so that no file shows a board that is no
  longer up.

Each unit's files are written under one lock (:func:`board_lock`), the
notices read inside it. Only masked ID numbers ever reach a board: a notice
stores nothing else; :func:`rows` is what every file and the public page
(``notify.public_board``) show.
The PDF embeds a TrueType CJK font (reportlab cannot embed the CFF fonts of
Noto CJK): WenQuanYi Zen Hei from the Debian package ``fonts-wqy-zenhei``,
or whatever ``NOTICE_FONT`` points at.
"""
from __future__ import annotations

import html
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from nameko.extensions import DependencyProvider

from services.notify import rules
from services.notify.channels import OutgoingMessage
from shared.config import data_dir
from shared.problems import FontMissing, classify

log = logging.getLogger(__name__)

DEFAULT_FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
FONT_PACKAGE = "fonts-wqy-zenhei"

#: the review steps (both shipped policies) as a board or a letter names them
STEP_NAMES = {
    "community_evaluation": "社区民主评议",
    "community_notice": "社区公示",
    "township_review": "乡镇（街道）评审",
    "township_opinion": "乡镇（街道）初审",
    "township_notice": "乡镇（街道）公示",
    "joint_review": "区低保中心会审",
    "result": "审批结果",
}


def step_name(step: str) -> str:
    return STEP_NAMES.get(step, step)


def notice_title(stage: str) -> str:
    """公布 for the decision, 公示 for the steps before it."""
    return "低保审批结果公布" if stage == "result" else f"低保{step_name(stage)}"


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def period(notice) -> str:
    return f"{chinese_date(notice.posted_on)}至{chinese_date(notice.closes_on)}"


def amount(notice) -> str:
    return f"{notice.monthly_benefit:.2f}" if notice.monthly_benefit is not None else "—"


HOW_TO_OBJECT = ("对公示对象有异议的，请在公示期内向本社区（村）低保专干、乡镇（街道）低保办或区民政局低保中心"
                 "反映，可以实名，也可以匿名。异议将被登记，并依规重新调查核实。")
INTRO = "根据最低生活保障审核确认的规定，现将下列家庭的有关情况予以公示，接受群众监督。"
COLUMNS = ("序号", "公示事项", "户主姓名", "身份证号", "家庭人口", "月保障金（元）", "公示期")


def rows(notices) -> list[tuple[str, ...]]:
    return [(str(n), notice_title(x.stage), x.head_name, x.masked_resident_id, f"{x.household_size}人",
             amount(x), period(x)) for n, x in enumerate(notices, 1)]


# --- HTML ------------------------------------------------------------------------

PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  @page {{ size: A4 landscape; margin: 12mm; }}
  body {{ font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Microsoft YaHei", sans-serif;
         color: #111; max-width: 60em; margin: 2em auto; padding: 0 1em; line-height: 1.6; }}
  h1 {{ text-align: center; font-size: 1.6em; margin-bottom: 0.2em; }}
  .unit {{ text-align: center; margin-top: 0; }}
  table {{ border-collapse: collapse; width: 100%; margin: 1em 0; }}
  th, td {{ border: 1px solid #333; padding: 0.35em 0.5em; text-align: center; }}
  th {{ background: #eee; }}
  .object {{ border: 2px solid #b00; padding: 0.6em 1em; }}
  .footer {{ text-align: right; margin-top: 2em; }}
  @media print {{ body {{ margin: 0; max-width: none; }} th {{ background: none; }} }}
</style>
</head>
<body>
<h1>最低生活保障公示</h1>
<p class="unit">{unit}</p>
<p>{intro}</p>
{body}
<p class="object"><strong>如何提出异议：</strong>{how_to_object}</p>
<p class="footer">{unit}<br>{today}</p>
</body>
</html>
"""


def sheet_name(unit_code: str, notice_id: str) -> str:
    """A notice's sheet, relative to the boards' folder (and to the index page)."""
    return f"{unit_code}/{notice_id}.pdf"


def render_html(unit_name: str, notices, today: date, unit_code: str | None = None) -> str:
    """The board page; with ``unit_code`` each row links its notice's sheet (the index)."""
    esc = html.escape
    if notices:
        links = unit_code is not None
        head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS) + ("<th>公示单</th>" if links else "")
        body = "".join("<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row)
                       + (f'<td><a href="{esc(sheet_name(unit_code, n.id))}">打印</a></td>' if links else "")
                       + "</tr>\n" for n, row in zip(notices, rows(notices)))
        table = f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
    else:
        table = "<p>目前没有正在公示的事项。</p>"
    return PAGE.format(title=esc(f"{unit_name} 最低生活保障公示"), unit=esc(unit_name), intro=esc(INTRO),
                       body=table, how_to_object=esc(HOW_TO_OBJECT), today=esc(chinese_date(today)))


# --- PDF -------------------------------------------------------------------------

_fonts: dict[str, str] = {}
_font_lock = threading.Lock()


def cjk_font(path: str) -> str:
    """Register the TrueType (collection) font at ``path`` once; its name."""
    with _font_lock:
        if path not in _fonts:
            if not Path(path).is_file():
                raise FontMissing(f"no CJK font at {path} (NOTICE_FONT): install the Debian package "
                                  f"{FONT_PACKAGE} (`make sysdeps`) or point NOTICE_FONT at a TrueType CJK font")
            from reportlab.pdfbase import pdfmetrics
            from reportlab.pdfbase.ttfonts import TTFont

            name = f"DibaoCJK{len(_fonts)}"
            try:
                font = TTFont(name, path, subfontIndex=0)
            except OSError:
                raise
            except Exception as exc:  # noqa: BLE001 - reportlab's TTFError: not a usable TrueType font
                raise FontMissing(f"the font at {path} (NOTICE_FONT) cannot be embedded ({exc}): install the "
                                  f"Debian package {FONT_PACKAGE} or point NOTICE_FONT at a TrueType CJK font"
                                  ) from None
            pdfmetrics.registerFont(font)
            _fonts[path] = name
        return _fonts[path]


def render_pdf(unit_name: str, notices, today: date, font_path: str, target: Path) -> None:
    """An A4 sheet to print and pin on the board."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER, TA_RIGHT
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = cjk_font(font_path)
    base = ParagraphStyle("base", fontName=font, fontSize=11, leading=17, wordWrap="CJK")
    title = ParagraphStyle("title", parent=base, fontSize=20, leading=28, alignment=TA_CENTER)
    centred = ParagraphStyle("centred", parent=base, alignment=TA_CENTER)
    cell = ParagraphStyle("cell", parent=base, fontSize=10, leading=14, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
    esc = html.escape
    story = [Paragraph("最低生活保障公示", title), Paragraph(esc(unit_name), centred), Spacer(1, 5 * mm),
             Paragraph(esc(INTRO), base), Spacer(1, 4 * mm)]
    if notices:
        data = [[Paragraph(esc(c), cell) for c in COLUMNS]]
        data += [[Paragraph(esc(value), cell) for value in row] for row in rows(notices)]
        widths = [w * mm for w in (12, 48, 28, 52, 20, 30, 62)]
        table = Table(data, colWidths=widths, repeatRows=1)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]))
        story.append(table)
    else:
        story.append(Paragraph("目前没有正在公示的事项。", base))
    story += [Spacer(1, 6 * mm), Paragraph("如何提出异议：" + esc(HOW_TO_OBJECT), base), Spacer(1, 10 * mm),
              Paragraph(f"{esc(unit_name)}<br/>{chinese_date(today)}", right)]
    doc = SimpleDocTemplate(str(target), pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=14 * mm, bottomMargin=14 * mm, title=f"{unit_name} 最低生活保障公示",
                            author="Dibao")
    doc.build(story)


def write_atomically(path: Path, write) -> None:
    """Readers (a browser, a printer) never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_board_locks: dict[tuple[str, str], threading.Lock] = {}
_board_locks_guard = threading.Lock()


def board_lock(directory: Path, unit_code: str) -> threading.Lock:
    """One lock per board: its notices are read and its files written under it,
    so a slower writer never puts back a board older than the last one."""
    with _board_locks_guard:
        return _board_locks.setdefault((str(directory), unit_code), threading.Lock())


@dataclass(frozen=True)
class Board:
    """Where boards are written, and with which font. Every method writes what
    it can: a file that cannot be written (a missing font, a full disk, a
    refused permission) is ``None`` in the answer and listed in ``problems``
    ({kind, target, code, detail}); notify retries it on its timer."""

    directory: Path
    font_path: str

    def lock(self, unit_code: str) -> threading.Lock:
        return board_lock(self.directory, unit_code)

    def index_path(self, unit_code: str) -> Path:
        return self.directory / f"{unit_code}.html"

    def board_sheet_path(self, unit_code: str) -> Path:
        return self.directory / f"{unit_code}.pdf"

    def notice_sheet_path(self, unit_code: str, notice_id: str) -> Path:
        return self.directory / sheet_name(unit_code, notice_id)

    def _write(self, result: dict, kind: str, key: str, target: str, path: Path, write) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, write)
            result[key] = str(path)
        except OSError as exc:
            problem = classify(exc)
            if problem is None:
                raise
            result["problems"].append({"kind": kind, "target": target, "code": problem.code,
                                       "detail": problem.detail})
            _remove(path)   # an older file would show notices no longer up

    def render(self, unit_code: str, unit_name: str, notices, today: date) -> dict:
        """The whole board: the index page, then the sheet of all its notices."""
        result = {"unit_code": unit_code, "html": None, "pdf": None, "notices": len(notices), "problems": []}
        self._write_index(result, unit_code, unit_name, notices, today)
        self._write(result, "board_pdf", "pdf", unit_code, self.board_sheet_path(unit_code),
                    lambda p: render_pdf(unit_name, notices, today, self.font_path, p))
        return result

    def index(self, unit_code: str, unit_name: str, notices, today: date) -> dict:
        """The index page after the board changed; the whole-board sheet it
        outdated is removed (made again on demand)."""
        result = {"unit_code": unit_code, "html": None, "pdf": None, "notices": len(notices), "problems": []}
        self._write_index(result, unit_code, unit_name, notices, today)
        _remove(self.board_sheet_path(unit_code))
        return result

    def _write_index(self, result: dict, unit_code: str, unit_name: str, notices, today: date) -> None:
        page = render_html(unit_name, notices, today, unit_code)
        self._write(result, "board_html", "html", unit_code, self.index_path(unit_code),
                    lambda p: p.write_text(page, encoding="utf-8"))

    def notice_sheet(self, unit_code: str, unit_name: str, notice, today: date) -> dict:
        """One notice's own printable sheet (once, when it goes up)."""
        result = {"notice_id": notice.id, "pdf": None, "problems": []}
        self._write(result, "notice_pdf", "pdf", notice.id, self.notice_sheet_path(unit_code, notice.id),
                    lambda p: render_pdf(unit_name, [notice], today, self.font_path, p))
        return result

    def withdraw(self, unit_code: str, notice_id: str) -> None:
        """A closed notice's sheet goes (the index no longer lists it)."""
        _remove(self.notice_sheet_path(unit_code, notice_id))


def read_sheet(path: Path) -> bytes | None:
    """A sheet's bytes, or None when it is not there (not made yet, or outdated and removed)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


class NoticeBoard(DependencyProvider):
    """``DATA_DIR/notices/<unit_code>.{html,pdf}``; font from NOTICE_FONT."""

    def setup(self):
        config = self.container.config
        self.board = Board(data_dir(config) / "notices", config.get("NOTICE_FONT") or DEFAULT_FONT)
        if not Path(self.board.font_path).is_file():
            log.error("no CJK font at %s (NOTICE_FONT): notice PDFs cannot be printed until the Debian "
                      "package %s is installed", self.board.font_path, FONT_PACKAGE)

    def get_dependency(self, worker_ctx):
        return self.board


# --- messages to households ----------------------------------------------------------

def decision_text(kind: str, p: dict, name: str) -> tuple[str, str]:
    """(subject, text) of the message about a decision event's payload ``p``."""
    if kind == "community_evaluated":
        if p["skipped"]:
            return "低保申请进展", f"{name}：您家的最低生活保障申请按规定免于社区民主评议，已转入下一审核环节。"
        result = "已通过" if p["passed"] else "未通过"
        return "低保申请进展", (f"{name}：您家的最低生活保障申请{result}{chinese_date(p['meeting_date'])}"
                             f"召开的社区民主评议。")
    if kind == "township_reviewed":
        result = "已通过" if p["passed"] else "未通过"
        return "低保申请进展", f"{name}：您家的最低生活保障申请{result}乡镇（街道）审核。"
    if kind == "case_approved":
        year, month = p["start_month"].split("-")
        return "低保审批结果", (f"{name}：您家的最低生活保障申请已于{chinese_date(p['approved_on'])}批准，"
                             f"保障人口{p['household_size']}人，月保障金{p['monthly_benefit']:.2f}元，"
                             f"自{int(year)}年{int(month)}月起发放。")
    if kind == "application_rejected":
        return "低保审批结果", (f"{name}：您家的最低生活保障申请在“{step_name(p['step'])}”环节未获通过"
                             f"（{chinese_date(p['rejected_on'])}）。理由：{p['reason']}。"
                             f"如对决定有异议，可以依法申请复核。")
    if kind == "reinvestigation_required":
        return "低保申请进展", (f"{name}：您家的最低生活保障申请在{step_name(p['step'])}期间收到群众异议，"
                             f"工作人员将重新入户调查核实，请予以配合。")
    if kind == "case_adjusted":
        change = "提高" if p["direction"] == "raised" else "降低"
        return "低保待遇调整", (f"{name}：经审核审批，您家的月保障金自{month_text(p['effective_month'])}起{change}为"
                             f"{p['new_benefit']:.2f}元（原{p['old_benefit']:.2f}元），保障人口{p['household_size']}人。"
                             f"理由：{p['reason']}。如对决定有异议，可以依法申请复核。")
    if kind == "case_cancelled":
        if p.get("gradual_exit_until"):
            when = f"按规定渐退，保障金发放至{month_text(p['gradual_exit_until'])}，自{month_text(p['effective_month'])}起停发"
        else:
            when = f"自{month_text(p['effective_month'])}起停发保障金"
        return "低保待遇停止", (f"{name}：经审核审批，您家的最低生活保障{when}。理由：{p['reason']}。"
                             f"如对决定有异议，可以依法申请复核。")
    if kind in ("appeal_decided", "case_restored"):
        return appeal_text(kind, p, name)
    raise ValueError(f"no message for {kind}")


#: the decision a household appealed, as its letter names it
APPEAL_KINDS = {"rejection": "最低生活保障申请不予批准", "cancellation": "停发最低生活保障",
                "benefit_change": "变更最低生活保障金"}


def appeal_text(kind: str, p: dict, name: str) -> tuple[str, str]:
    """复核: the appeal's outcome with its reason (ID numbers masked: notify.rules), and a
    restored case. No amounts: the benefit comes in case_adjusted's or case_approved's message."""
    if kind == "case_restored":
        return "低保待遇恢复", (f"{name}：经复核，您家的最低生活保障已于{chinese_date(p['restored_on'])}恢复，"
                             f"保障人口{p['household_size']}人，{month_text(p['cancelled_effective_month'])}起"
                             f"停发的保障金将按规定补发。")
    decision = APPEAL_KINDS.get(p["kind"], "原决定")
    reason = rules.resident_ids_masked(p["reason"])
    if p["outcome"] == "upheld":
        then = {"restored": "恢复您家的最低生活保障",
                "reverted": "您家的月保障金恢复为变更前的金额",
                "reinvestigation": "工作人员将重新入户调查核实，请予以配合"}.get(
            p["reopened_at"], f"您家的申请将从“{step_name(p['reopened_at'] or '')}”环节重新审核")
        return "低保复核结果", (f"{name}：您家对{decision}决定提出的复核申请，经复核成立，撤销原决定，{then}。"
                             f"理由：{reason}。")
    return "低保复核结果", (f"{name}：您家对{decision}决定提出的复核申请，经复核不成立，维持原决定。"
                         f"理由：{reason}。如对复核决定不服，可以依法申请行政复议或者提起行政诉讼。")


def month_text(month: str) -> str:
    year, m = month.split("-")
    return f"{int(year)}年{int(m)}月"


def review_reminder_text(p: dict, head_name: str | None = None) -> str:
    """复核提醒 to the community officer."""
    who = f"户主{head_name}家" if head_name else "该户"
    return (f"复核提醒：{who}（{p['category']}类低保对象）应于{chinese_date(p['due_on'])}前完成复核（入户核查收入、"
            f"人口和财产变化）。")


def decision_message(event: dict, payload: dict, household: dict) -> OutgoingMessage:
    subject, text = decision_text(event["type"], payload, household["head_name"])
    return OutgoingMessage(event_id=event["event_id"], kind=event["type"], household_id=household["id"],
                           community_code=household["community_code"], head_name=household["head_name"],
                           phone=household["phone"], subject=subject, text=text)
