"""Console pages for questionnaires: list, metadata, the item builder, scoring rules, preview, versions, FHIR.

Every change of items or scoring goes through `questionnaire_version_save`, which edits the current
version in place until it has responses and makes the next version after. Questionnaires hold no
patient data, so these pages write no read-audit entries.
"""

from __future__ import annotations

import copy
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from followups.fhir import ImportProblem, questionnaire_resource
from followups.forms import (
    FilterForm,
    ImportForm,
    ItemForm,
    JsonForm,
    QuestionnaireForm,
    ScoreForm,
    answers_from_post,
    condition_text,
    form_rows,
    item_from_form,
    item_initial,
    score_initial,
)
from followups.models import Questionnaire, QuestionnaireVersion
from followups.scoring import scores_compute, walk
from followups.selectors import questionnaires_filtered
from followups.services import answers_for, questionnaire_import, questionnaire_save, questionnaire_version_save
from followups.services.items import ANSWERED_TYPES

EDIT = ("followups.change_questionnaire", "followups.change_questionnaireversion", "followups.add_questionnaireversion")
# Builder error fields (`general/pain.answerOption[1]` → `answerOption`) → the item form's fields.
ITEM_FIELDS = {
    "linkId": "link_id",
    "type": "kind",
    "text": "text",
    "required": "required",
    "answerOption": "options",
    "repeats": "kind",
    "enableWhen": "conditions",
    "enableBehavior": "enable_behavior",
    "extension": "min_value",
}


def _questionnaire(uuid) -> Questionnaire:
    return get_object_or_404(Questionnaire.objects.select_related("current_version"), uuid=uuid)


def _items(questionnaire: Questionnaire) -> list[dict]:
    return copy.deepcopy(questionnaire.current_version.items) if questionnaire.current_version else []


def _scoring(questionnaire: Questionnaire) -> dict:
    return copy.deepcopy(questionnaire.current_version.scoring) if questionnaire.current_version else {}


def _locate(items: list[dict], link_id: str, path: str = "") -> tuple[list[dict], int, str] | None:
    """The list holding the item, its index there, and its builder path (`general/pain`)."""
    for index, item in enumerate(items):
        here = f"{path}/{item['linkId']}" if path else item["linkId"]
        if item["linkId"] == link_id:
            return items, index, here
        found = _locate(item.get("item") or [], link_id, here)
        if found:
            return found
    return None


def _parent_of(items: list[dict], link_id: str) -> str:
    for item in walk(items):
        if any(child["linkId"] == link_id for child in item.get("item") or ()):
            return item["linkId"]
    return ""


def _groups(items: list[dict], excluding: str = "") -> list[str]:
    """Groups an item may be placed in (not itself nor its own descendants)."""
    skipped: set[str] = set()
    if excluding and (found := _locate(items, excluding)):
        siblings, index, _path = found
        skipped = {item["linkId"] for item in walk([siblings[index]])}
    return [item["linkId"] for item in walk(items) if item.get("type") == "group" and item["linkId"] not in skipped]


def _error_lines(error: ValidationError) -> list[str]:
    return [f"{location}: {' '.join(texts)}" for location, texts in error.message_dict.items()]


def _save(request: HttpRequest, questionnaire: Questionnaire, items: list[dict], scoring: dict) -> QuestionnaireVersion:
    """Save and say whether the change edited the current version or made a new one."""
    before = questionnaire.current_version_id
    version = questionnaire_version_save(actor=request.user, questionnaire=questionnaire, items=items, scoring=scoring)
    if before and version.pk != before:
        messages.info(
            request,
            _("Version %(number)s has responses, so the change was saved as version %(new)s.")
            % {"number": version.number - 1, "new": version.number},
        )
    else:
        messages.success(request, _("Saved."))
    return version


# --- List and metadata ----------------------------------------------------------------------------------


@login_required
@permission_required("followups.view_questionnaire", raise_exception=True)
def questionnaire_list(request: HttpRequest) -> HttpResponse:
    """Questionnaires by purpose, department and status."""
    form = FilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    department = filters.get("department")
    questionnaires = questionnaires_filtered(
        purpose=filters.get("purpose", ""),
        department=department.code if department else "",
        status=filters.get("status", ""),
        search=filters.get("q", ""),
    )
    return render(request, "followups/questionnaires/list.html", {"form": form, "questionnaires": questionnaires[:500]})


def _metadata_form(request: HttpRequest, questionnaire: Questionnaire | None) -> HttpResponse:
    initial = QuestionnaireForm.initial_for(questionnaire) if questionnaire else {"status": "draft"}
    form = QuestionnaireForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = questionnaire_save(actor=request.user, data=data, questionnaire=questionnaire)
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Questionnaire saved."))
            return redirect("followups:questionnaire-detail", saved.uuid)
    return render(request, "followups/questionnaires/form.html", {"form": form, "questionnaire": questionnaire})


@login_required
@permission_required("followups.add_questionnaire", raise_exception=True)
def questionnaire_create(request: HttpRequest) -> HttpResponse:
    return _metadata_form(request, None)


@login_required
@permission_required("followups.change_questionnaire", raise_exception=True)
def questionnaire_edit(request: HttpRequest, uuid) -> HttpResponse:
    return _metadata_form(request, _questionnaire(uuid))


@login_required
@permission_required("followups.view_questionnaire", raise_exception=True)
def questionnaire_detail(request: HttpRequest, uuid) -> HttpResponse:
    """The builder: the item tree with its actions, the scoring rules and the versions."""
    questionnaire = _questionnaire(uuid)
    versions = questionnaire.versions.select_related("created_by").annotate(answered=Count("responses"))
    items = _items(questionnaire)
    rows = []

    def visit(children: list[dict], depth: int) -> None:
        for item in children:
            conditions = [condition_text(condition) for condition in item.get("enableWhen") or ()]
            rows.append({"item": item, "depth": range(depth), "conditions": conditions})
            visit(item.get("item") or [], depth + 1)

    visit(items, 0)
    return render(
        request,
        "followups/questionnaires/detail.html",
        {
            "questionnaire": questionnaire,
            "rows": rows,
            "scores": _scoring(questionnaire).get("scores") or [],
            "versions": versions,
            "can_edit": request.user.has_perms(EDIT),
            "answered": bool(questionnaire.current_version and questionnaire.current_version.responses.exists()),
        },
    )


# --- Items ----------------------------------------------------------------------------------------------


def _item_page(request: HttpRequest, questionnaire: Questionnaire, link_id: str | None) -> HttpResponse:
    items = _items(questionnaire)
    existing = None
    if link_id is not None:
        found = _locate(items, link_id)
        if found is None:
            raise Http404
        siblings, index, item_path = found
        existing = siblings[index]
    groups = _groups(items, excluding=link_id or "")
    initial = (
        item_initial(existing, _parent_of(items, link_id))
        if existing
        else {"parent": request.GET.get("parent", ""), "enable_behavior": "all"}
    )
    form = ItemForm(request.POST or None, initial=initial, groups=groups)
    if request.method == "POST" and form.is_valid():
        try:
            item = item_from_form(form.cleaned_data, existing=existing, all_items=items)
        except ValidationError as error:
            form.add_error("conditions", error)
        else:
            parent = form.cleaned_data.get("parent") or ""
            if existing is not None:
                siblings, index, _here = _locate(items, link_id)
                if parent == _parent_of(items, link_id):
                    siblings[index] = item
                else:
                    siblings.pop(index)
                    existing = None
            if existing is None:
                target = items
                if parent:
                    holder = _locate(items, parent)
                    group_list, group_index, _group_path = holder
                    target = group_list[group_index].setdefault("item", [])
                target.append(item)
            located = _locate(items, item["linkId"])
            item_path = located[2] if located else item["linkId"]
            try:
                _save(request, questionnaire, items, _scoring(questionnaire))
            except ValidationError as error:
                for location, texts in error.message_dict.items():
                    field = location[len(item_path) + 1 :] if location.startswith(f"{item_path}.") else ""
                    name = ITEM_FIELDS.get(field.split("[")[0].split(".")[0])
                    form.add_error(name, texts if name else [f"{location}: {text}" for text in texts])
                messages.error(request, _("Not saved: see the problems below."))
            else:
                return redirect(
                    f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#item-{item['linkId']}"
                )
    return render(
        request,
        "followups/questionnaires/item_form.html",
        {"form": form, "questionnaire": questionnaire, "link_id": link_id},
    )


@login_required
@permission_required(EDIT, raise_exception=True)
def item_add(request: HttpRequest, uuid) -> HttpResponse:
    return _item_page(request, _questionnaire(uuid), None)


@login_required
@permission_required(EDIT, raise_exception=True)
def item_edit(request: HttpRequest, uuid, link_id: str) -> HttpResponse:
    return _item_page(request, _questionnaire(uuid), link_id)


@login_required
@permission_required(EDIT, raise_exception=True)
@require_POST
def item_remove(request: HttpRequest, uuid, link_id: str) -> HttpResponse:
    questionnaire = _questionnaire(uuid)
    items = _items(questionnaire)
    found = _locate(items, link_id)
    if found is None:
        raise Http404
    siblings, index, _path = found
    siblings.pop(index)
    try:
        _save(request, questionnaire, items, _scoring(questionnaire))
    except ValidationError as error:
        messages.error(
            request, _("%(link)s was not removed:") % {"link": link_id} + " " + "; ".join(_error_lines(error))
        )
    return redirect("followups:questionnaire-detail", questionnaire.uuid)


@login_required
@permission_required(EDIT, raise_exception=True)
@require_POST
def item_move(request: HttpRequest, uuid, link_id: str) -> HttpResponse:
    """Move an item up or down among its siblings."""
    questionnaire = _questionnaire(uuid)
    items = _items(questionnaire)
    found = _locate(items, link_id)
    if found is None:
        raise Http404
    siblings, index, _path = found
    other = index - 1 if request.POST.get("direction") == "up" else index + 1
    if 0 <= other < len(siblings):
        siblings[index], siblings[other] = siblings[other], siblings[index]
        try:
            _save(request, questionnaire, items, _scoring(questionnaire))
        except ValidationError as error:
            messages.error(request, _("Not moved:") + " " + "; ".join(_error_lines(error)))
    return redirect(f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#item-{link_id}")


@login_required
@permission_required(EDIT, raise_exception=True)
def json_edit(request: HttpRequest, uuid) -> HttpResponse:
    """Items and scoring rules as JSON, for what the item form does not cover."""
    questionnaire = _questionnaire(uuid)
    initial = {
        "items": json.dumps(_items(questionnaire), ensure_ascii=False, indent=2),
        "scoring": json.dumps(_scoring(questionnaire), ensure_ascii=False, indent=2),
    }
    form = JsonForm(request.POST or None, initial=initial)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            _save(request, questionnaire, form.cleaned_data["items"], form.cleaned_data["scoring"])
        except ValidationError as error:
            problems = _error_lines(error)
        else:
            return redirect("followups:questionnaire-detail", questionnaire.uuid)
    return render(
        request,
        "followups/questionnaires/json_form.html",
        {"form": form, "questionnaire": questionnaire, "problems": problems},
    )


# --- Scoring --------------------------------------------------------------------------------------------


def _scored_choices(items: list[dict]) -> list[tuple[str, str]]:
    return [
        (item["linkId"], f"{item['linkId']} · {item.get('text', '')[:40]}")
        for item in walk(items)
        if item.get("type") in ANSWERED_TYPES and item.get("type") not in ("date", "string", "text")
    ]


@login_required
@permission_required(EDIT, raise_exception=True)
def score_edit(request: HttpRequest, uuid, code: str | None = None) -> HttpResponse:
    """Add or change one scoring rule and its interpretation bands."""
    questionnaire = _questionnaire(uuid)
    items, scoring = _items(questionnaire), _scoring(questionnaire)
    rules = scoring.setdefault("scores", [])
    position = next((index for index, rule in enumerate(rules) if rule.get("code") == code), None)
    if code is not None and position is None:
        raise Http404
    initial = score_initial(rules[position]) if position is not None else {"method": "sum"}
    form = ScoreForm(request.POST or None, initial=initial, scored=_scored_choices(items))
    if request.method == "POST" and form.is_valid():
        rule = form.rule()
        if position is None:
            rules.append(rule)
            position = len(rules) - 1
        else:
            rules[position] = rule
        try:
            _save(request, questionnaire, items, scoring)
        except ValidationError as error:
            prefix = f"scoring.scores[{position}]"
            for location, texts in error.message_dict.items():
                field = location[len(prefix) + 1 :].split("[")[0] if location.startswith(prefix + ".") else ""
                form.add_error(field if field in form.fields else None, texts)
        else:
            return redirect(f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#scores")
    return render(
        request,
        "followups/questionnaires/score_form.html",
        {"form": form, "questionnaire": questionnaire, "code": code},
    )


@login_required
@permission_required(EDIT, raise_exception=True)
@require_POST
def score_remove(request: HttpRequest, uuid, code: str) -> HttpResponse:
    questionnaire = _questionnaire(uuid)
    scoring = _scoring(questionnaire)
    scoring["scores"] = [rule for rule in scoring.get("scores") or [] if rule.get("code") != code]
    _save(request, questionnaire, _items(questionnaire), scoring)
    return redirect(f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#scores")


# --- Preview, versions, FHIR ----------------------------------------------------------------------------


def _version(questionnaire: Questionnaire, request: HttpRequest) -> QuestionnaireVersion:
    wanted = request.GET.get("version")
    if wanted:
        version = questionnaire.versions.filter(number=wanted).first() if wanted.isdigit() else None
        if version is None:
            raise Http404
        return version
    if questionnaire.current_version is None:
        raise Http404
    return questionnaire.current_version


@login_required
@permission_required("followups.view_questionnaire", raise_exception=True)
def preview(request: HttpRequest, uuid) -> HttpResponse:
    """The form as a patient or a nurse sees it; submitting checks the answers and shows the scores, saving nothing."""
    questionnaire = _questionnaire(uuid)
    version = _version(questionnaire, request)
    answers, errors, scores = {}, {}, None
    if request.method == "POST":
        answers = answers_from_post(version.items, request.POST)
        try:
            cleaned = answers_for(version.items, answers, complete=True)
        except ValidationError as error:
            errors = error.message_dict
        else:
            scores = scores_compute(version.items, version.scoring, cleaned)
            messages.success(request, _("The answers are complete; nothing was saved."))
    return render(
        request,
        "followups/questionnaires/preview.html",
        {
            "questionnaire": questionnaire,
            "version": version,
            "rows": form_rows(version.items, answers, errors),
            "scores": scores,
            "rules": {rule["code"]: rule for rule in version.scoring.get("scores") or []},
        },
    )


@login_required
@permission_required("followups.view_questionnaire", raise_exception=True)
def export(request: HttpRequest, uuid) -> HttpResponse:
    """Download a version as a FHIR R4 Questionnaire (JSON)."""
    questionnaire = _questionnaire(uuid)
    version = _version(questionnaire, request)
    body = json.dumps(questionnaire_resource(version), ensure_ascii=False, indent=2)
    response = HttpResponse(body, content_type="application/fhir+json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{questionnaire.code}-v{version.number}.json"'
    return response


@login_required
@permission_required(EDIT + ("followups.add_questionnaire",), raise_exception=True)
def import_page(request: HttpRequest) -> HttpResponse:
    """Upload a FHIR R4 Questionnaire: a new questionnaire, or the next version of the one with its code."""
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            version = questionnaire_import(actor=request.user, data=form.cleaned_data["file"])
        except ImportProblem as problem:
            problems = [f"{location}: {' '.join(texts)}" for location, texts in problem.problems.items()]
        else:
            messages.success(
                request,
                _("Imported as version %(number)s of %(title)s.")
                % {"number": version.number, "title": version.questionnaire.title},
            )
            return redirect("followups:questionnaire-detail", version.questionnaire.uuid)
    return render(request, "followups/questionnaires/import.html", {"form": form, "problems": problems})


urlpatterns = [
    path("questionnaires/", questionnaire_list, name="questionnaire-list"),
    path("questionnaires/new/", questionnaire_create, name="questionnaire-create"),
    path("questionnaires/import/", import_page, name="questionnaire-import"),
    path("questionnaires/<uuid:uuid>/", questionnaire_detail, name="questionnaire-detail"),
    path("questionnaires/<uuid:uuid>/edit/", questionnaire_edit, name="questionnaire-edit"),
    path("questionnaires/<uuid:uuid>/items/new/", item_add, name="questionnaire-item-add"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/", item_edit, name="questionnaire-item-edit"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/remove/", item_remove, name="questionnaire-item-remove"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/move/", item_move, name="questionnaire-item-move"),
    path("questionnaires/<uuid:uuid>/json/", json_edit, name="questionnaire-json"),
    path("questionnaires/<uuid:uuid>/scores/new/", score_edit, name="questionnaire-score-add"),
    path("questionnaires/<uuid:uuid>/scores/<slug:code>/", score_edit, name="questionnaire-score-edit"),
    path("questionnaires/<uuid:uuid>/scores/<slug:code>/remove/", score_remove, name="questionnaire-score-remove"),
    path("questionnaires/<uuid:uuid>/preview/", preview, name="questionnaire-preview"),
    path("questionnaires/<uuid:uuid>/export/", export, name="questionnaire-export"),
]
