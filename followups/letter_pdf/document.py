"""One PDF of letters: the first page's head at fixed places (letterhead, the address in the envelope's
window, date, reference), the letter's text, the link to answer online, then the questionnaire on paper."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas as pdf_canvas
from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import HRFlowable

from followups.letter_pdf.fonts import FALLBACK_FONT, letter_font
from followups.letter_pdf.paper import QuestionnairePaper, Styles, paragraph_text

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


# --- The document ---------------------------------------------------------------------------------------------


def _story(letter: Letter, font: str, styles: Styles, width: float) -> list:
    story: list = [_LetterStart(letter), _Head(letter, font, width)]
    story.append(Paragraph(paragraph_text(letter.greeting), styles.body))
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(paragraph_text(letter.intro), styles.body))
    if letter.link_url:
        story.append(Spacer(1, 2 * mm))
        story.append(Paragraph(paragraph_text(letter.online), styles.body))
        story.append(_online(letter, styles, width))
    story.append(Spacer(1, 2 * mm))
    for line in letter.instructions:
        story.append(Paragraph(paragraph_text(line), styles.body))
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(paragraph_text(letter.closing), styles.body))
    story.append(Spacer(1, 3 * mm))
    story.append(HRFlowable(width="100%", thickness=0.6, color=colors.HexColor("#8a1c1c")))
    story.append(Paragraph(paragraph_text(letter.title), styles.title))
    if letter.description:
        story.append(Paragraph(paragraph_text(letter.description), styles.small))
    story.append(Paragraph(paragraph_text(letter.labels["required"]), styles.small))
    story.extend(
        QuestionnairePaper(
            letter.items, language=letter.language, words=letter.labels, font=font, styles=styles, width=width
        ).flowables()
    )
    return story


def _online(letter: Letter, styles: Styles, width: float) -> Table:
    """The follow-up link as a QR code and as text, for answering online instead of by post."""
    size = 24 * mm
    widget = QrCodeWidget(letter.link_url)
    left, bottom, right, top = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (right - left), 0, 0, size / (top - bottom), 0, 0])
    drawing.add(widget)
    text = Paragraph(paragraph_text(letter.link_url), styles.small)
    table = Table([[drawing, text]], colWidths=[size + 4 * mm, width - size - 4 * mm], hAlign="LEFT")
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "MIDDLE"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


def letters_pdf(letters: list[Letter], *, duplex: bool = True, title: str = "") -> bytes:
    """All `letters` in one PDF, each starting on a new page (on a sheet's front when `duplex`)."""
    font = letter_font()
    styles = Styles(font)
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
