"""Questionnaires and responses as FHIR R4 resources, and a FHIR Questionnaire back into a version.

Pure mapping (no I/O): the FHIR facade serves these resources and the console exports and imports them.
A FHIR Questionnaire is one version: its canonical `url` names the questionnaire by code, `version`
is the version number, and responses point at `url|version`. Items are stored FHIR-shaped, so they
pass through as they are; the scoring rules travel in an HCRM extension.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from followups.models import QuestionnaireResponse, QuestionnaireVersion
from followups.scoring import TRANSLATION_URL, enabled_items, option_code, translation_of

CANONICAL_PREFIX = "urn:hcrm:Questionnaire:"
IDENTIFIER_SYSTEM = "urn:hcrm:CodeSystem:questionnaire"
PURPOSE_SYSTEM = "urn:hcrm:CodeSystem:questionnaire-purpose"
DEPARTMENT_SYSTEM = "urn:hcrm:CodeSystem:department"
USAGE_CONTEXT_SYSTEM = "http://terminology.hl7.org/CodeSystem/usage-context-type"
SCORING_URL = "urn:hcrm:StructureDefinition:questionnaire-scoring"
DISEASE_CODES_URL = "urn:hcrm:StructureDefinition:questionnaire-disease-codes"
SCORE_URL = "urn:hcrm:StructureDefinition:questionnaire-score"
RESPONSE_STATUS = {"in_progress": "in-progress", "completed": "completed"}
RESPONSE_STATUS_IN = {value: key for key, value in RESPONSE_STATUS.items()}
VALUE_KEYS = {
    "boolean": "valueBoolean",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "date": "valueDate",
    "string": "valueString",
    "text": "valueString",
}


def instant(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def canonical(code: str) -> str:
    return f"{CANONICAL_PREFIX}{code}"


def computable_name(code: str) -> str:
    """FHIR's machine name (`[A-Z][A-Za-z0-9_]*`) from the code: `post-discharge` → `PostDischarge`."""
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", code) if part)
    return name if name[:1].isalpha() else f"Q{name}"


def _usage(code: str, system: str, value: str, display: str = "") -> dict:
    coding = {"system": system, "code": value}
    if display:
        coding["display"] = display
    return {
        "code": {"system": USAGE_CONTEXT_SYSTEM, "code": code},
        "valueCodeableConcept": {"coding": [coding]},
    }


def questionnaire_resource(version: QuestionnaireVersion, departments=None) -> dict[str, Any]:
    """One version as a Questionnaire; a version that is no longer current is `retired`."""
    questionnaire = version.questionnaire
    current = questionnaire.current_version_id == version.pk
    departments = questionnaire.departments.all() if departments is None else departments
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": str(version.uuid),
        "meta": {"lastUpdated": instant(version.updated_at)},
        "url": canonical(questionnaire.code),
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": questionnaire.code}],
        "version": str(version.number),
        "name": computable_name(questionnaire.code),
        "title": questionnaire.title,
        "status": questionnaire.status if current else "retired",
        "date": instant(version.updated_at),
        "publisher": "HCRM",
        "useContext": [
            _usage("focus", PURPOSE_SYSTEM, questionnaire.purpose, str(questionnaire.get_purpose_display())),
            *(_usage("venue", DEPARTMENT_SYSTEM, department.code, department.name) for department in departments),
        ],
        "item": version.items,
    }
    if questionnaire.title_en:
        resource["_title"] = {
            "extension": [
                {
                    "url": TRANSLATION_URL,
                    "extension": [
                        {"url": "lang", "valueCode": "en"},
                        {"url": "content", "valueString": questionnaire.title_en},
                    ],
                }
            ]
        }
    if questionnaire.description:
        resource["description"] = questionnaire.description
    extensions = []
    if version.scoring:
        extensions.append({"url": SCORING_URL, "valueString": json.dumps(version.scoring, ensure_ascii=False)})
    for code in questionnaire.disease_codes:
        extensions.append({"url": DISEASE_CODES_URL, "valueString": code})
    if extensions:
        resource["extension"] = extensions
    return resource


def _answer(item: dict, value: Any) -> dict:
    if item["type"] == "choice":
        for option in item.get("answerOption") or ():
            if option_code(option) == str(value):
                if "valueCoding" in option:
                    return {"valueCoding": {k: v for k, v in option["valueCoding"].items() if v not in (None, "")}}
                return {key: option[key] for key in ("valueString", "valueInteger", "valueDate") if key in option}
        return {"valueCoding": {"code": str(value)}}
    return {VALUE_KEYS[item["type"]]: value}


def _response_items(items: list[dict], shown: set[str], answers: dict[str, Any]) -> list[dict]:
    found = []
    for item in items:
        if item["linkId"] not in shown:
            continue
        children = _response_items(item.get("item") or [], shown, answers)
        value = answers.get(item["linkId"])
        entry: dict[str, Any] = {"linkId": item["linkId"]}
        if item.get("text"):
            entry["text"] = item["text"]
        if value not in (None, "", []) and item["type"] in VALUE_KEYS | {"choice": ""}:
            values = value if isinstance(value, list) else [value]
            entry["answer"] = [_answer(item, one) for one in values]
            if children:
                # FHIR nests the children of a question under its answer.
                entry["answer"][0]["item"] = children
        elif children:
            entry["item"] = children
        else:
            continue
        found.append(entry)
    return found


def response_resource(response: QuestionnaireResponse) -> dict[str, Any]:
    """A QuestionnaireResponse: the answered items nested as in the questionnaire, scores as extensions."""
    version = response.version
    items = version.items
    shown = {item["linkId"] for item in enabled_items(items, response.answers)}
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.uuid),
        "meta": {"lastUpdated": instant(response.updated_at)},
        "questionnaire": f"{canonical(version.questionnaire.code)}|{version.number}",
        "status": RESPONSE_STATUS[response.status],
        "subject": {"reference": f"Patient/{response.patient.uuid}"},
        "authored": timezone.localtime(response.completed_at or response.updated_at).isoformat(),
    }
    if response.answered_by_id:
        resource["author"] = {
            "reference": f"Practitioner/{response.answered_by.uuid}",
            "display": response.answered_by.full_name,
        }
    answered = _response_items(items, shown, response.answers)
    if answered:
        resource["item"] = answered
    scores = [
        {
            "url": SCORE_URL,
            "extension": [
                {"url": "code", "valueCode": code},
                {"url": "value", "valueDecimal": score["value"]},
                *([{"url": "band", "valueString": score["band"]}] if score.get("band") else []),
                *([{"url": "flag", "valueCode": score["flag"]}] if score.get("flag") else []),
            ],
        }
        for code, score in response.scores.items()
    ]
    if scores:
        resource["extension"] = scores
    return resource


# --- FHIR Questionnaire → HCRM ---------------------------------------------------------------------------


class ImportProblem(Exception):
    """A FHIR Questionnaire that cannot be imported: messages by FHIRPath-style element."""

    def __init__(self, problems: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{path}: {', '.join(messages)}" for path, messages in problems.items()))
        self.problems = problems


def _validated(data: Any) -> dict:
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError as PydanticValidationError

    if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
        raise ImportProblem({"Questionnaire.resourceType": [_("Expected a Questionnaire resource.")]})
    try:
        get_fhir_model_class("Questionnaire").model_validate(data)
    except PydanticValidationError as error:
        problems: dict[str, list[str]] = {}
        for detail in error.errors():
            path = "Questionnaire" + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}"
                for part in detail.get("loc", ())
                if part != "__root__"
            )
            message = _("Unknown element.") if detail.get("type") == "extra_forbidden" else detail.get("msg", "")
            problems.setdefault(path, []).append(message)
        raise ImportProblem(problems) from None
    return data


def _code_of(data: dict) -> str:
    for identifier in data.get("identifier") or ():
        if identifier.get("system") == IDENTIFIER_SYSTEM and identifier.get("value"):
            return identifier["value"]
    url = data.get("url") or ""
    if url.startswith(CANONICAL_PREFIX):
        return url[len(CANONICAL_PREFIX) :]
    source = data.get("name") or url.rstrip("/").rsplit("/", 1)[-1] or data.get("title") or ""
    code = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", source)
    code = re.sub(r"[^A-Za-z0-9_-]+", "-", code).strip("-").lower()[:64]
    if not code:
        raise ImportProblem({"Questionnaire.url": [_("Give a url, identifier or name to know the questionnaire by.")]})
    return code


ORDINAL_URLS = (
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
)


def _value_set_options(value_set: dict) -> list[dict]:
    """Answer options from a contained ValueSet's expansion or its enumerated concepts, keeping their weights."""
    found = []
    concepts = [(None, concept) for concept in (value_set.get("expansion") or {}).get("contains") or ()]
    if not concepts:
        for include in (value_set.get("compose") or {}).get("include") or ():
            concepts += [(include.get("system"), concept) for concept in include.get("concept") or ()]
    for system, concept in concepts:
        coding = {
            key: value
            for key, value in (
                ("system", concept.get("system") or system),
                ("code", concept.get("code")),
                ("display", concept.get("display")),
            )
            if value
        }
        option: dict[str, Any] = {"valueCoding": coding}
        weights = [ext for ext in concept.get("extension") or () if ext.get("url") in ORDINAL_URLS]
        if weights:
            option["extension"] = [{"url": ORDINAL_URLS[0], **{k: v for k, v in weights[0].items() if k != "url"}}]
        found.append(option)
    return found


def _expand_value_sets(items: list[dict], contained: dict[str, dict], path: str) -> dict[str, list[str]]:
    """Replace `answerValueSet` references to contained value sets with answer options, in place."""
    problems: dict[str, list[str]] = {}
    for index, item in enumerate(items):
        here = f"{path}.item[{index}]"
        reference = item.get("answerValueSet")
        if reference:
            value_set = contained.get(reference[1:]) if reference.startswith("#") else None
            options = _value_set_options(value_set) if value_set else []
            if options and not item.get("answerOption"):
                item["answerOption"] = options
                del item["answerValueSet"]
            elif not item.get("answerOption"):
                problems[f"{here}.answerValueSet"] = [
                    _(
                        "%(reference)s cannot be expanded here: give answerOption or a contained ValueSet with its concepts."
                    )
                    % {"reference": reference}
                ]
        problems |= _expand_value_sets(item.get("item") or [], contained, here)
    return problems


def questionnaire_from_fhir(data: Any) -> dict[str, Any]:
    """Metadata, items and scoring of a FHIR Questionnaire, validated with the R4B models.

    Answer lists in contained value sets become answer options; external value sets cannot be expanded
    without a terminology server and are refused.
    """
    data = copy.deepcopy(_validated(data))
    contained = {
        resource.get("id"): resource
        for resource in data.get("contained") or ()
        if resource.get("resourceType") == "ValueSet" and resource.get("id")
    }
    problems = _expand_value_sets(data.get("item") or [], contained, "Questionnaire")
    if problems:
        raise ImportProblem(problems)
    purpose, departments = "", []
    for context in data.get("useContext") or ():
        for coding in (context.get("valueCodeableConcept") or {}).get("coding") or ():
            if coding.get("system") == PURPOSE_SYSTEM:
                purpose = coding.get("code", "")
            elif coding.get("system") == DEPARTMENT_SYSTEM:
                departments.append(coding.get("code", ""))
    scoring: dict = {}
    disease_codes = []
    for index, extension in enumerate(data.get("extension") or ()):
        if extension.get("url") == SCORING_URL:
            try:
                scoring = json.loads(extension.get("valueString") or "{}")
            except json.JSONDecodeError:
                raise ImportProblem(
                    {f"Questionnaire.extension[{index}].valueString": [_("The scoring rules are not valid JSON.")]}
                ) from None
        elif extension.get("url") == DISEASE_CODES_URL and extension.get("valueString"):
            disease_codes.append(extension["valueString"])
    status = data.get("status")
    code = _code_of(data)
    return {
        "metadata": {
            "code": code,
            # A title is what staff pick a questionnaire by; one without a title or name shows its code.
            "title": (data.get("title") or data.get("name") or code)[:200],
            "title_en": translation_of(data.get("_title"), "en")[:200],
            "description": data.get("description") or "",
            "purpose": purpose or "clinical",
            "status": "draft" if status == "unknown" else status,
            "departments": departments,
            "disease_codes": disease_codes,
        },
        "items": data.get("item") or [],
        "scoring": scoring,
    }


def item_paths(items: list[dict]) -> dict[str, str]:
    """The builder's item path (`general/pain`) → its FHIRPath (`Questionnaire.item[1].item[0]`)."""
    paths: dict[str, str] = {}

    def visit(children: list, prefix: str, fhir: str) -> None:
        for index, item in enumerate(children):
            if not isinstance(item, dict):
                continue
            name = f"{prefix}/{item.get('linkId') or '?'}" if prefix else str(item.get("linkId") or "?")
            paths.setdefault(name, f"{fhir}.item[{index}]")
            visit(item.get("item") or [], name, f"{fhir}.item[{index}]")

    visit(items, "", "Questionnaire")
    return paths


def fhir_location(location: str, items: list[dict]) -> str:
    """Where a builder error (`general/pain.type`, `scoring.scores[0]`, `title`) sits in the FHIR resource."""
    if location.startswith("scoring"):
        return "Questionnaire.extension(scoring)" + location[len("scoring") :]
    paths = item_paths(items)
    # linkIds may hold dots ("1.1"): the longest item path the location starts with is the item.
    for item_path in sorted(paths, key=len, reverse=True):
        if location == item_path or location.startswith(f"{item_path}."):
            return paths[item_path] + location[len(item_path) :]
    head = location.partition(".")[0]
    field = {"code": "url", "title": "title", "purpose": "useContext", "departments": "useContext"}.get(head, head)
    return f"Questionnaire.{field}"


__all__ = [
    "ImportProblem",
    "canonical",
    "fhir_location",
    "questionnaire_from_fhir",
    "questionnaire_resource",
    "response_resource",
]
