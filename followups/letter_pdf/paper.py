"""The questionnaire on paper: groups as headings, questions numbered, choices as tick boxes, numbers and
text as lines to write on, conditions as "answer only if" hints; each question kept on one page."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table, TableStyle

from followups.forms import item_text
from followups.scoring import option_code
from followups.services.items import ANSWERED_TYPES, MAX_VALUE_URL, MIN_VALUE_URL, extension_value, is_scale

TRANSLATION_URL = "http://hl7.org/fhir/StructureDefinition/translation"
HIDDEN_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-hidden"
UNIT_URL = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
BOX = 3.6 * mm


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


class Box(Flowable):
    """An empty tick box."""

    def __init__(self, size: float = BOX) -> None:
        super().__init__()
        self.size = size

    def wrap(self, available_width, available_height):
        return self.size, self.size

    def draw(self) -> None:
        self.canv.setLineWidth(0.7)
        self.canv.rect(0, 0, self.size, self.size)


class WriteLine(Flowable):
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


class Styles:
    """The paragraph styles of a letter, all in its one font."""

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


def paragraph_text(value: str) -> str:
    return escape(value).replace("\n", "<br/>")


class QuestionnairePaper:
    """Turns a version's item tree into flowables: groups as headings, each question kept on one page."""

    def __init__(
        self, items: list[dict], *, language: str, words: dict[str, str], font: str, styles: Styles, width: float
    ) -> None:
        self.all_items = items
        self.language = language
        self.words = words
        self.font = font
        self.styles = styles
        self.width = width
        self.numbers: dict[str, int] = {}
        self.items: dict[str, dict] = {}
        self._number(items)

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
        for item in self.all_items if items is None else items:
            if _hidden(item):
                continue
            kind = item.get("type")
            if kind == "group":
                found.extend(self._heading(item))
                found.extend(self.flowables(item.get("item") or []))
            elif kind == "display":
                found.append(Paragraph(paragraph_text(self._item_text(item)), self.styles.body))
                found.extend(self.flowables(item.get("item") or []))
            else:
                found.append(KeepTogether(self._question(item)))
                found.extend(self.flowables(item.get("item") or []))
        return found

    def _heading(self, item: dict) -> list:
        """A group's heading (and its condition), kept on the page of the group's first question."""
        parts = []
        if self._item_text(item):
            parts.append(Paragraph(paragraph_text(self._item_text(item)), self.styles.heading))
        hint = self._hint(item)
        if hint:
            parts.append(Paragraph(paragraph_text(hint), self.styles.hint))
        for part in parts:
            part.keepWithNext = True
        return parts

    def _item_text(self, item: dict) -> str:
        return localized(item, "text", self.language) or item_text(item)

    def _question(self, item: dict) -> list:
        number = self.numbers[item["linkId"]]
        mark = " *" if item.get("required") else ""
        parts: list = [
            Spacer(1, 2 * mm),
            Paragraph(f"{number}. {paragraph_text(self._item_text(item))}{mark}", self.styles.question),
        ]
        hint = self._hint(item)
        if hint:
            parts.append(Paragraph(paragraph_text(hint), self.styles.hint))
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
            return localized(coding, "display", self.language) or str(coding.get("code"))
        return str(option_code(option))

    def _answer_space(self, item: dict) -> list:
        kind = item.get("type")
        words = self.words
        if kind == "boolean":
            return [self._boxes([words["yes"], words["no"]], columns=4)]
        if kind == "choice":
            options = [self._option_text(option) for option in item.get("answerOption") or ()]
            note = words["tick_any"] if item.get("repeats") else words["tick_one"]
            return [Paragraph(paragraph_text(note), self.styles.small), self._boxes(options)]
        low, high = extension_value(item, MIN_VALUE_URL), extension_value(item, MAX_VALUE_URL)
        if kind == "integer" and is_scale(item) and _small_range(low, high):
            return [self._boxes([str(step) for step in range(int(low), int(high) + 1)], columns=11)]
        if kind in ("integer", "decimal"):
            after = _unit(item)
            if low is not None and high is not None:
                after = f"{after}  ({words['range'] % {'min': low, 'max': high}})".strip()
            return [WriteLine(40 * mm, self.font, after)]
        if kind == "date":
            return [WriteLine(40 * mm, self.font, f"({words['date']})")]
        if kind == "text":
            return [WriteLine(self.width, self.font) for _line in range(3)]
        return [WriteLine(self.width * 0.7, self.font)]

    def _boxes(self, texts: list[str], columns: int | None = None) -> Table:
        """Tick boxes with their texts, laid out in as many columns as their length allows."""
        if columns is None:
            longest = max((pdfmetrics.stringWidth(text, self.font, 9.5) for text in texts), default=0)
            columns = max(1, min(len(texts), int(self.width // (longest + BOX + 8 * mm))))
            # Short options (a 0–10 scale) fit eleven to a row; longer ones no more than six.
            columns = min(columns, 11 if longest < 8 * mm else 6)
        column_width = self.width / columns
        cells = [[Box(), Paragraph(paragraph_text(text), self.styles.option)] for text in texts]
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
