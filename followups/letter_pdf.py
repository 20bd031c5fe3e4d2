"""Follow-up letters as PDF: A4 pages, the address block where a window envelope shows it, the questionnaire
on paper (tick boxes, lines to write on), page numbers per letter; many letters in one file for printing.

Pure rendering: `letters_pdf` takes what each letter says (`Letter`) and returns the PDF's bytes. The text of
each letter is put into words in its patient's language by the caller's `translation.override`.

Chinese is drawn with an embedded TrueType font (LETTER_FONT_PATH; Debian's WenQuanYi Micro Hei by default),
or, when no font file is there, with reportlab's built-in CID font STSong-Light, which the PDF reader supplies.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.utils.translation import gettext as _
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import HRFlowable

from followups.forms import item_text
from followups.scoring import option_code
from followups.services.items import ANSWERED_TYPES, MAX_VALUE_URL, MIN_VALUE_URL, extension_value, is_scale

logger = logging.getLogger(__name__)

FALLBACK_FONT = "STSong-Light"
TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
HIDDEN_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
UNIT_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_LEFT = 20 * mm
MARGIN_RIGHT = 18 * mm
MARGIN_TOP = 12 * mm
MARGIN_BOTTOM = 18 * mm
# The address field of a C5/DL window envelope (DIN 5008 form B): 20 mm from the left edge, 45 mm from the
# top, 85 × 45 mm; the recipient's lines sit in its lower part, below the sender's return line.
WINDOW_LEFT = 20 * mm
WINDOW_TOP = 45 * mm
WINDOW_WIDTH = 85 * mm
WINDOW_HEIGHT = 45 * mm
BOX = 3.6 * mm


# --- Font ---------------------------------------------------------------------------------------------------


def letter_font() -> str:
    """The registered name of the font letters are set in: the configured TTF/TTC file, else STSong-Light."""
    path = Path(settings.LETTER_FONT_PATH) if settings.LETTER_FONT_PATH else None
    if path is not None and path.is_file():
        name = "Letter-" + path.stem
        if name not in pdfmetrics.getRegisteredFontNames():
            try:
                # A collection (.ttc) holds several faces; the first is the regular one.
                pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
            except (TTFError, OSError):
                logger.warning("letter font %s cannot be read; falling back to %s", path, FALLBACK_FONT)
                return _fallback_font()
        return name
    return _fallback_font()


def _fallback_font() -> str:
    if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


# --- What a letter says ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """One letter, every word already in the patient's language (built under `translation.override`)."""

    reference: str
    language: str
    hospital_name: str
    hospital_phone: str
    date: str
    return_line: str
    address_lines: list[str]
    greeting: str
    intro: str
    online: str
    title: str
    description: str
    items: list[dict]
    link_url: str
    instructions: list[str]
    closing: str
    # The fixed words (`labels()`), taken under the same language.
    labels: dict[str, str]


def localized(element: dict, key: str, language: str) -> str:
    """An element's `key` text in `language`, from the FHIR translation extension on `_key` when there is one."""
    if language != "zh-hans":
        for extension in (element.get(f"_{key}") or {}).get("extension") or ():
            if extension.get("url") != TRANSLATION_URL:
                continue
            parts = {part.get("url"): part for part in extension.get("extension") or ()}
            if (parts.get("lang") or {}).get("valueCode", "").lower().startswith(language[:2]):
                return (parts.get("content") or {}).get("valueString") or ""
    return element.get(key) or ""


def labels() -> dict[str, str]:
    """The fixed words of a letter, in the active language."""
    return {
        "yes": _("Yes"),
        "no": _("No"),
        "tick_one": _("Tick one."),
        "tick_any": _("Tick all that apply."),
        "date": _("year / month / day"),
        "range": _("from %(min)s to %(max)s"),
        "page": _("Page %(page)s of %(pages)s"),
        "reference": _("Reference"),
        "blank": _("This page is intentionally left blank."),
        "only_if": _("Answer only if %(conditions)s."),
        "and": _(" and "),
        "or": _(" or "),
        "answered": _("question %(number)s is answered"),
        "unanswered": _("question %(number)s is not answered"),
        "condition": _("question %(number)s %(operator)s %(value)s"),
        "=": _("is"),
        "!=": _("is not"),
        ">": _("is more than"),
        "<": _("is less than"),
        ">=": _("is at least"),
        "<=": _("is at most"),
        "required": _("Please answer the questions marked *."),
    }


# --- Building blocks ------------------------------------------------------------------------------------------


class _LetterStart(Flowable):
    """Draws nothing; tells the canvas that a new letter begins on this page (for its page numbers)."""

    def __init__(self, letter: Letter) -> None:
        super().__init__()
        self.letter = letter

    def wrap(self, available_width, available_height):
        return 0, 0

    def draw(self) -> None:
        self.canv.letter_mark = (id(self.letter), self.letter.reference, self.letter.labels)


class _Head(Flowable):
    """The first page's head at fixed places: letterhead, the window envelope's address field, date and reference."""

    def __init__(self, letter: Letter, font: str, width: float) -> None:
        super().__init__()
        self.letter = letter
        self.font = font
        self.width = width
        self.height = WINDOW_TOP + WINDOW_HEIGHT - MARGIN_TOP + 4 * mm

    def wrap(self, available_width, available_height):
        return self.width, self.height

    def draw(self) -> None:
        canvas = self.canv
        letter = self.letter
        # Work in page coordinates: this flowable always opens a page, but its origin is the frame's.
        x0, y0 = canvas.absolutePosition(0, 0)
        canvas.saveState()
        canvas.translate(-x0, -y0)
        top = PAGE_HEIGHT
        canvas.setFont(self.font, 17)
        canvas.drawString(MARGIN_LEFT, top - MARGIN_TOP - 7 * mm, letter.hospital_name)
        canvas.setFont(self.font, 8.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        if letter.hospital_phone:
            canvas.drawString(MARGIN_LEFT, top - MARGIN_TOP - 12 * mm, letter.hospital_phone)
        canvas.setStrokeColor(colors.HexColor("#8a1c1c"))
        canvas.setLineWidth(1.2)
        canvas.line(MARGIN_LEFT, top - MARGIN_TOP - 15 * mm, PAGE_WIDTH - MARGIN_RIGHT, top - MARGIN_TOP - 15 * mm)
        # Sender's return line at the top of the window, then the recipient.
        window_top = top - WINDOW_TOP
        canvas.setFont(self.font, 7)
        canvas.drawString(WINDOW_LEFT + 2 * mm, window_top - 5 * mm, letter.return_line)
        canvas.setStrokeColor(colors.HexColor("#999999"))
        canvas.setLineWidth(0.3)
        canvas.line(
            WINDOW_LEFT + 2 * mm, window_top - 6.2 * mm, WINDOW_LEFT + WINDOW_WIDTH - 4 * mm, window_top - 6.2 * mm
        )
        canvas.setFillColor(colors.black)
        line_y = window_top - 12 * mm
        for index, line in enumerate(letter.address_lines[:6]):
            size = 11.5 if index == len(letter.address_lines) - 1 or index == 0 else 10.5
            canvas.setFont(self.font, size)
            for part in _fit(line, self.font, size, WINDOW_WIDTH - 6 * mm)[:2]:
                canvas.drawString(WINDOW_LEFT + 2 * mm, line_y, part)
                line_y -= size * 1.35
        # Date and reference on the right, beside the window.
        right = PAGE_WIDTH - MARGIN_RIGHT
        canvas.setFont(self.font, 10)
        canvas.drawRightString(right, window_top - 12 * mm, letter.date)
        canvas.setFont(self.font, 9)
        canvas.drawRightString(right, window_top - 18 * mm, f"{letter.labels['reference']}: {letter.reference}")
        canvas.restoreState()


def _fit(text: str, font: str, size: float, width: float) -> list[str]:
    """`text` broken into lines no wider than `width` (by character: addresses mix Chinese and Latin)."""
    lines, current = [], ""
    for character in text:
        if current and pdfmetrics.stringWidth(current + character, font, size) > width:
            lines.append(current)
            current = character.lstrip()
        else:
            current += character
    return [*lines, current] if current else lines


class _Box(Flowable):
    """An empty tick box."""

    def __init__(self, size: float = BOX) -> None:
        super().__init__()
        self.size = size

    def wrap(self, available_width, available_height):
        return self.size, self.size

    def draw(self) -> None:
        self.canv.setLineWidth(0.7)
        self.canv.rect(0, 0, self.size, self.size)


class _WriteLine(Flowable):
    """A line to write on, `width` long, with optional text after it (a unit)."""

    def __init__(self, width: float, font: str, after: str = "", height: float = 8 * mm) -> None:
        super().__init__()
        self.line_width = width
        self.font = font
        self.after = after
        self.height = height

    def wrap(self, available_width, available_height):
        self.width = min(available_width, self.line_width + (30 * mm if self.after else 0))
        return self.width, self.height

    def draw(self) -> None:
        self.canv.setLineWidth(0.5)
        self.canv.line(0, 1.5 * mm, self.line_width, 1.5 * mm)
        if self.after:
            self.canv.setFont(self.font, 9.5)
            self.canv.drawString(self.line_width + 2 * mm, 2.2 * mm, self.after)


class _NumberedCanvas(pdf_canvas.Canvas):
    """Holds pages back until the end, to number each letter's pages "n of m" and pad letters for duplex."""

    def __init__(self, *args, duplex: bool = True, font: str = FALLBACK_FONT, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pages: list[dict[str, Any]] = []
        self.letter_mark: tuple | None = None
        self.duplex = duplex
        self.footer_font = font

    def showPage(self) -> None:  # noqa: N802 (reportlab's name)
        self.pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        counts: dict[int, int] = {}
        for page in self.pages:
            mark = page["letter_mark"]
            if mark is not None:
                counts[mark[0]] = counts.get(mark[0], 0) + 1
        numbers: dict[int, int] = {}
        for index, page in enumerate(self.pages):
            self.__dict__.update(page)
            mark = page["letter_mark"]
            if mark is not None:
                key, reference, words = mark
                numbers[key] = numbers.get(key, 0) + 1
                self._footer(reference, words["page"] % {"page": numbers[key], "pages": counts[key]}, words)
            super().showPage()
            following = self.pages[index + 1]["letter_mark"] if index + 1 < len(self.pages) else None
            letter_ends = mark is not None and (following is None or following[0] != mark[0])
            # Each letter starts on the front of a sheet: a letter of an odd number of pages gets a blank back.
            if self.duplex and letter_ends and following is not None and counts[mark[0]] % 2:
                self.setFont(self.footer_font, 8)
                self.setFillColor(colors.HexColor("#999999"))
                self.drawCentredString(PAGE_WIDTH / 2, PAGE_HEIGHT / 2, mark[2]["blank"])
                super().showPage()
        super().save()

    def _footer(self, reference: str, page_text: str, words: dict[str, str]) -> None:
        self.saveState()
        self.setFont(self.footer_font, 8)
        self.setFillColor(colors.HexColor("#555555"))
        self.drawString(MARGIN_LEFT, 10 * mm, f"{words['reference']}: {reference}")
        self.drawRightString(PAGE_WIDTH - MARGIN_RIGHT, 10 * mm, page_text)
        self.restoreState()


# --- The questionnaire on paper -------------------------------------------------------------------------------


class _Styles:
    def __init__(self, font: str) -> None:
        base = ParagraphStyle("letter", fontName=font, fontSize=10.5, leading=15, wordWrap="CJK")
        self.body = base
        self.small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=11.5, textColor="#555555")
        self.hint = ParagraphStyle("hint", parent=self.small, textColor="#8a1c1c")
        self.question = ParagraphStyle("question", parent=base, fontSize=10.5, leading=14.5, spaceBefore=2)
        self.title = ParagraphStyle("title", parent=base, fontSize=14, leading=19, spaceBefore=4, spaceAfter=4)
        self.heading = ParagraphStyle(
            "heading", parent=base, fontSize=11.5, leading=16, spaceBefore=8, spaceAfter=2, textColor="#8a1c1c"
        )
        self.option = ParagraphStyle("option", parent=base, fontSize=9.5, leading=12)


def _text(value: str) -> str:
    return escape(value).replace("\n", "<br/>")


class _Questionnaire:
    """Turns a version's item tree into flowables: groups as headings, each question kept on one page."""

    def __init__(self, letter: Letter, font: str, styles: _Styles, width: float) -> None:
        self.letter = letter
        self.words = letter.labels
        self.font = font
        self.styles = styles
        self.width = width
        self.numbers: dict[str, int] = {}
        self.items: dict[str, dict] = {}
        self._number(letter.items)

    def _number(self, items: list[dict]) -> None:
        for item in items:
            if _hidden(item):
                continue
            self.items[item["linkId"]] = item
            if item.get("type") in ANSWERED_TYPES:
                self.numbers[item["linkId"]] = len(self.numbers) + 1
            self._number(item.get("item") or [])

    def flowables(self, items: list[dict] | None = None) -> list:
        found: list = []
        for item in self.letter.items if items is None else items:
            if _hidden(item):
                continue
            kind = item.get("type")
            if kind == "group":
                found.extend(self._heading(item))
                found.extend(self.flowables(item.get("item") or []))
            elif kind == "display":
                found.append(Paragraph(_text(self._item_text(item)), self.styles.body))
                found.extend(self.flowables(item.get("item") or []))
            else:
                found.append(KeepTogether(self._question(item)))
                found.extend(self.flowables(item.get("item") or []))
        return found

    def _heading(self, item: dict) -> list:
        """A group's heading (and its condition), kept on the page of the group's first question."""
        parts = []
        if self._item_text(item):
            parts.append(Paragraph(_text(self._item_text(item)), self.styles.heading))
        hint = self._hint(item)
        if hint:
            parts.append(Paragraph(_text(hint), self.styles.hint))
        for part in parts:
            part.keepWithNext = True
        return parts

    def _item_text(self, item: dict) -> str:
        return localized(item, "text", self.letter.language) or item_text(item)

    def _question(self, item: dict) -> list:
        number = self.numbers[item["linkId"]]
        mark = " *" if item.get("required") else ""
        parts: list = [
            Spacer(1, 2 * mm),
            Paragraph(f"{number}. {_text(self._item_text(item))}{mark}", self.styles.question),
        ]
        hint = self._hint(item)
        if hint:
            parts.append(Paragraph(_text(hint), self.styles.hint))
        parts.extend(self._answer_space(item))
        return parts

    def _hint(self, item: dict) -> str:
        conditions = item.get("enableWhen") or []
        if not conditions:
            return ""
        words = self.words
        described = [self._condition(condition) for condition in conditions]
        joiner = words["or"] if item.get("enableBehavior") == "any" else words["and"]
        return words["only_if"] % {"conditions": joiner.join(described)}

    def _condition(self, condition: dict) -> str:
        words = self.words
        question = condition.get("question", "")
        number = self.numbers.get(question, question)
        operator = condition.get("operator", "=")
        value = next((value for key, value in condition.items() if key.startswith("answer")), None)
        if operator == "exists":
            return words["answered" if value else "unanswered"] % {"number": number}
        return words["condition"] % {
            "number": number,
            "operator": words.get(operator, operator),
            "value": self._answer_words(self.items.get(question), value),
        }

    def _answer_words(self, item: dict | None, value: Any) -> str:
        if isinstance(value, bool):
            return f"“{self.words['yes'] if value else self.words['no']}”"
        if isinstance(value, dict):
            code = value.get("code")
            for option in (item or {}).get("answerOption") or ():
                if option_code(option) == str(code):
                    return f"“{self._option_text(option)}”"
            return f"“{value.get('display') or code}”"
        return f"“{value}”"

    def _option_text(self, option: dict) -> str:
        coding = option.get("valueCoding")
        if coding is not None:
            return localized(coding, "display", self.letter.language) or str(coding.get("code"))
        return str(option_code(option))

    def _answer_space(self, item: dict) -> list:
        kind = item.get("type")
        words = self.words
        if kind == "boolean":
            return [self._boxes([words["yes"], words["no"]], columns=4)]
        if kind == "choice":
            options = [self._option_text(option) for option in item.get("answerOption") or ()]
            note = words["tick_any"] if item.get("repeats") else words["tick_one"]
            return [Paragraph(_text(note), self.styles.small), self._boxes(options)]
        low, high = extension_value(item, MIN_VALUE_URL), extension_value(item, MAX_VALUE_URL)
        if kind == "integer" and is_scale(item) and _small_range(low, high):
            return [self._boxes([str(step) for step in range(int(low), int(high) + 1)], columns=11)]
        if kind in ("integer", "decimal"):
            after = _unit(item)
            if low is not None and high is not None:
                after = f"{after}  ({words['range'] % {'min': low, 'max': high}})".strip()
            return [_WriteLine(40 * mm, self.font, after)]
        if kind == "date":
            return [_WriteLine(40 * mm, self.font, f"({words['date']})")]
        if kind == "text":
            return [_WriteLine(self.width, self.font) for _line in range(3)]
        return [_WriteLine(self.width * 0.7, self.font)]

    def _boxes(self, texts: list[str], columns: int | None = None) -> Table:
        """Tick boxes with their texts, laid out in as many columns as their length allows."""
        if columns is None:
            longest = max((pdfmetrics.stringWidth(text, self.font, 9.5) for text in texts), default=0)
            columns = max(1, min(len(texts), int(self.width // (longest + BOX + 8 * mm))))
            # Short options (a 0–10 scale) fit eleven to a row; longer ones no more than six.
            columns = min(columns, 11 if longest < 8 * mm else 6)
        column_width = self.width / columns
        cells = [[_Box(), Paragraph(_text(text), self.styles.option)] for text in texts]
        rows = []
        for start in range(0, len(cells), columns):
            row = [part for cell in cells[start : start + columns] for part in cell]
            row += ["", ""] * (columns - len(cells[start : start + columns]))
            rows.append(row)
        widths = [BOX + 2.5 * mm, column_width - BOX - 2.5 * mm] * columns
        table = Table(rows, colWidths=widths, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                    ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
                ]
            )
        )
        return table


def _hidden(item: dict) -> bool:
    return bool(extension_value(item, HIDDEN_URL))


def _unit(item: dict) -> str:
    unit = extension_value(item, UNIT_URL)
    if isinstance(unit, dict):
        return unit.get("display") or unit.get("code") or ""
    return str(unit or "")


def _small_range(low: Any, high: Any) -> bool:
    try:
        return 0 < int(high) - int(low) <= 10
    except (TypeError, ValueError):
        return False


# --- The document ---------------------------------------------------------------------------------------------


def _story(letter: Letter, font: str, styles: _Styles, width: float) -> list:
    story: list = [_LetterStart(letter), _Head(letter, font, width)]
    story.append(Paragraph(_text(letter.greeting), styles.body))
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(_text(letter.intro), styles.body))
    if letter.link_url:
        story.append(Spacer(1, 2 * mm))
        story.append(Paragraph(_text(letter.online), styles.body))
        story.append(_online(letter, styles, width))
    story.append(Spacer(1, 2 * mm))
    for line in letter.instructions:
        story.append(Paragraph(_text(line), styles.body))
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(_text(letter.closing), styles.body))
    story.append(Spacer(1, 3 * mm))
    story.append(HRFlowable(width="100%", thickness=0.6, color=colors.HexColor("#8a1c1c")))
    story.append(Paragraph(_text(letter.title), styles.title))
    if letter.description:
        story.append(Paragraph(_text(letter.description), styles.small))
    story.append(Paragraph(_text(letter.labels["required"]), styles.small))
    story.extend(_Questionnaire(letter, font, styles, width).flowables())
    return story


def _online(letter: Letter, styles: _Styles, width: float) -> Table:
    """The follow-up link as a QR code and as text, for answering online instead of by post."""
    size = 24 * mm
    widget = QrCodeWidget(letter.link_url)
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
    drawing.add(widget)
    text = Paragraph(_text(letter.link_url), styles.small)
    table = Table([[drawing, text]], colWidths=[size + 4 * mm, width - size - 4 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def letters_pdf(letters: list[Letter], *, duplex: bool = True, title: str = "") -> bytes:
    """All `letters` in one PDF, each starting on a new page (on a sheet's front when `duplex`)."""
    font = letter_font()
    styles = _Styles(font)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN_LEFT,
        rightMargin=MARGIN_RIGHT,
        topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=title,
        author=settings.HOSPITAL_NAME,
        creator="HCRM",
    )
    story: list = []
    for index, letter in enumerate(letters):
        if index:
            story.append(PageBreak())
        story.extend(_story(letter, font, styles, document.width))

    def make_canvas(*args, **kwargs):
        return _NumberedCanvas(*args, duplex=duplex, font=font, **kwargs)

    document.build(story, canvasmaker=make_canvas)
    return buffer.getvalue()
