"""A research cohort's answers as CSV or XLSX for analysis, under pseudonyms, with their data dictionary.

One row per completed response. No name, phone, MRN, national ID or birth date leaves: a member is the
cohort's pseudonym, age at enrolment and sex; the response date is a day, and its distance from
enrolment. Answers are codes (the dictionary gives their labels). Free-text answers may name someone, so
they stay out unless a person who may (`export_research_free_text`) asks for them.

Column names are variable names for statistics software (`pseudonym`, item linkIds, `score_<code>`), the
same in every language; the dictionary explains them in the reader's language and in English.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from followups.models import QuestionnaireVersion, ResearchCohort
from followups.scoring import item_text, option_code, translation_of, walk
from followups.selectors import cohort_responses, wave_number
from followups.services.items import ANSWERED_TYPES
from hcrm.audit import Event, audit_read
from hcrm.exports import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, csv_chunks, xlsx_write
from patients.models import Sex

FREE_TEXT_TYPES = frozenset({"string", "text"})
DICTIONARY_HEADER = ("variable", "type", "code", "label", "label_en")
CHUNK = 2000


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    label: Any  # text, or a lazy translation for the fixed columns
    label_en: str = ""
    codes: list[tuple[str, str, str]] = field(default_factory=list)  # (code, label, English label)


def _english(text) -> str:
    with translation.override("en"):
        return str(text)


def _sex_codes() -> list[tuple[str, str, str]]:
    return [(value, str(label), _english(label)) for value, label in Sex.choices]


FIXED_COLUMNS = (
    Column(
        "pseudonym",
        "string",
        gettext_lazy("The cohort's code for the patient: the same in each of their rows, another in every cohort"),
    ),
    Column("wave", "integer", gettext_lazy("Wave: its place in the cohort's schedule, from 1")),
    Column("offset_days", "integer", gettext_lazy("Days of the wave in the schedule")),
    Column("days_since_enrolment", "integer", gettext_lazy("Days from enrolment to the response")),
    Column("age_at_enrolment", "integer", gettext_lazy("Age in whole years on the day of enrolment")),
    Column("sex", "code", gettext_lazy("Sex")),
    Column("response_date", "date", gettext_lazy("Day the response was completed")),
    Column("questionnaire_version", "integer", gettext_lazy("Version of the questionnaire answered")),
)


def _age(birth: dt.date | None, on: dt.date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _bound(value: Any) -> str:
    return "" if value is None else str(value)


def _cell(value: Any) -> Any:
    """An answer as a cell: codes and numbers as they are, yes/no as 1/0, several answers joined by "|"."""
    if isinstance(value, list):
        return "|".join(str(_cell(one)) for one in value)
    if isinstance(value, bool):
        return int(value)
    return "" if value is None else value


class ResearchExport:
    """The columns, rows and dictionary of one export of `cohort`, as of `until`."""

    def __init__(self, cohort: ResearchCohort, *, include_free_text: bool, until: dt.datetime) -> None:
        self.cohort = cohort
        self.include_free_text = include_free_text
        self.until = until
        versions = QuestionnaireVersion.objects.filter(questionnaire_id=cohort.plan.questionnaire_id)
        self.items: dict[str, dict] = {}
        self.scores: dict[str, dict] = {}
        # The latest version names the columns; items and scores only older versions had follow.
        for version in versions.order_by("-number"):
            for item in walk(version.items):
                if item.get("type") not in ANSWERED_TYPES or item["linkId"] in self.items:
                    continue
                if item["type"] in FREE_TEXT_TYPES and not include_free_text:
                    continue
                self.items[item["linkId"]] = item
            for rule in (version.scoring or {}).get("scores") or ():
                self.scores.setdefault(rule["code"], rule)

    @property
    def header(self) -> list[str]:
        return [column.name for column in self.columns()]

    def columns(self) -> list[Column]:
        fixed = [
            Column(
                column.name,
                column.kind,
                column.label,
                _english(column.label),
                _sex_codes() if column.name == "sex" else [],
            )
            for column in FIXED_COLUMNS
        ]
        items = [self._item_column(item) for item in self.items.values()]
        scores = [
            Column(
                f"score_{code}",
                f"score ({rule.get('method', 'sum')})",
                rule.get("label", code),
                rule.get("label_en", ""),
                [
                    (
                        f"{_bound(band.get('min'))}–{_bound(band.get('max'))}",
                        band.get("label", ""),
                        band.get("label_en", ""),
                    )
                    for band in rule.get("bands") or ()
                ],
            )
            for code, rule in self.scores.items()
        ]
        return fixed + items + scores

    @staticmethod
    def _item_column(item: dict) -> Column:
        codes = []
        for option in item.get("answerOption") or ():
            coding = option.get("valueCoding") or {}
            code = option_code(option) or ""
            codes.append((code, coding.get("display") or code, translation_of(coding.get("_display"), "en")))
        if item["type"] == "boolean":
            codes = [("1", _("Yes"), "Yes"), ("0", _("No"), "No")]
        kind = f"{item['type']} (multiple: codes joined by |)" if item.get("repeats") else item["type"]
        return Column(item["linkId"], kind, item_text(item), translation_of(item.get("_text"), "en"), codes)

    def queryset(self):
        return cohort_responses(self.cohort, until=self.until)

    def count(self) -> int:
        return self.queryset().count()

    def rows(self) -> Iterator[list]:
        rows = self.queryset().values_list(
            "pseudonym",
            "joined_at",
            "offset_days",
            "completed_at",
            "answers",
            "scores",
            "version__number",
            "patient__sex",
            "patient__birth_date",
        )
        zone = timezone.get_default_timezone()
        for pseudonym, joined_at, offset, completed_at, answers, scores, version, sex, birth in rows.order_by(
            "pseudonym", "completed_at", "pk"
        ).iterator(chunk_size=CHUNK):
            joined = timezone.localdate(joined_at, timezone=zone)
            answered = timezone.localdate(completed_at, timezone=zone)
            yield [
                pseudonym,
                wave_number(self.cohort, offset) or "",
                "" if offset is None else offset,
                (answered - joined).days,
                _cell(_age(birth, joined)),
                sex,
                answered.isoformat(),
                version,
                *[_cell((answers or {}).get(link_id)) for link_id in self.items],
                *[_cell(((scores or {}).get(code) or {}).get("value")) for code in self.scores],
            ]

    def dictionary_rows(self) -> Iterator[list]:
        for column in self.columns():
            yield [column.name, column.kind, "", str(column.label), column.label_en]
            for code, label, label_en in column.codes:
                yield [column.name, "", code, label, label_en]


def _filename(cohort: ResearchCohort, part: str, file_format: str) -> str:
    return f"cohort-{cohort.uuid}-{part}.{file_format}"


def _free_text_check(user, include_free_text: bool) -> None:
    if include_free_text and not user.has_perm("followups.export_research_free_text"):
        raise PermissionDenied(_("You may not export free-text answers."))


def research_export_response(cohort: ResearchCohort, user, *, file_format: str, include_free_text: bool = False):
    """The cohort's answers as a download (CSV streamed; XLSX with the dictionary as its second sheet),
    with the audit entry of who exported how many rows: every research export goes through here."""
    _free_text_check(user, include_free_text)
    export = ResearchExport(cohort, include_free_text=include_free_text, until=timezone.now())
    count = export.count()
    audit_read(
        event=Event.EXPORT,
        instance=cohort,
        details={"cohort": str(cohort.uuid), "format": file_format, "rows": count, "free_text": include_free_text},
    )
    if file_format == "xlsx":
        # Rows go to a file on disk, not memory; the response closes (and so deletes) it once sent.
        target = tempfile.TemporaryFile()  # noqa: SIM115
        xlsx_write(
            target,
            [
                (_("Answers"), export.header, export.rows()),
                (_("Data dictionary"), DICTIONARY_HEADER, export.dictionary_rows()),
            ],
        )
        target.seek(0)
        return FileResponse(
            target,
            as_attachment=True,
            filename=_filename(cohort, "answers", "xlsx"),
            content_type=XLSX_CONTENT_TYPE,
        )
    response = StreamingHttpResponse(csv_chunks(export.header, export.rows()), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{_filename(cohort, "answers", "csv")}"'
    return response


def research_dictionary_response(cohort: ResearchCohort, user, *, include_free_text: bool = False) -> HttpResponse:
    """The data dictionary of the CSV export: what each column is and what its codes mean (no patient data)."""
    _free_text_check(user, include_free_text)
    export = ResearchExport(cohort, include_free_text=include_free_text, until=timezone.now())
    response = HttpResponse(
        b"".join(csv_chunks(DICTIONARY_HEADER, export.dictionary_rows())), content_type=CSV_CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(cohort, "dictionary", "csv")}"'
    return response
