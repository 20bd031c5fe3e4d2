"""The questionnaire builder: add, edit, move and remove items, scoring rules, and the JSON editor.

Every change goes through `questionnaire_version_save`, which edits the current version in place until
it has responses and makes the next version after; refused changes are shown next to the field.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from followups.builder import ItemForm, JsonForm, ScoreForm, item_from_form, item_initial, score_initial
from followups.models import Questionnaire, QuestionnaireVersion
from followups.scoring import walk
from followups.services import questionnaire_version_save
from followups.services.items import ANSWERED_TYPES
from followups.views.questionnaires import EDIT, editable_questionnaire, items_of, scoring_of

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


# --- Items ----------------------------------------------------------------------------------------------


def _item_page(request: HttpRequest, questionnaire: Questionnaire, link_id: str | None) -> HttpResponse:
    items = items_of(questionnaire)
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
                _save(request, questionnaire, items, scoring_of(questionnaire))
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
    return _item_page(request, editable_questionnaire(request, uuid), None)


@login_required
@permission_required(EDIT, raise_exception=True)
def item_edit(request: HttpRequest, uuid, link_id: str) -> HttpResponse:
    return _item_page(request, editable_questionnaire(request, uuid), link_id)


@login_required
@permission_required(EDIT, raise_exception=True)
@require_POST
def item_remove(request: HttpRequest, uuid, link_id: str) -> HttpResponse:
    questionnaire = editable_questionnaire(request, uuid)
    items = items_of(questionnaire)
    found = _locate(items, link_id)
    if found is None:
        raise Http404
    siblings, index, _path = found
    siblings.pop(index)
    try:
        _save(request, questionnaire, items, scoring_of(questionnaire))
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
    questionnaire = editable_questionnaire(request, uuid)
    items = items_of(questionnaire)
    found = _locate(items, link_id)
    if found is None:
        raise Http404
    siblings, index, _path = found
    other = index - 1 if request.POST.get("direction") == "up" else index + 1
    if 0 <= other < len(siblings):
        siblings[index], siblings[other] = siblings[other], siblings[index]
        try:
            _save(request, questionnaire, items, scoring_of(questionnaire))
        except ValidationError as error:
            messages.error(request, _("Not moved:") + " " + "; ".join(_error_lines(error)))
    return redirect(f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#item-{link_id}")


@login_required
@permission_required(EDIT, raise_exception=True)
def json_edit(request: HttpRequest, uuid) -> HttpResponse:
    """Items and scoring rules as JSON, for what the item form does not cover."""
    questionnaire = editable_questionnaire(request, uuid)
    initial = {
        "items": json.dumps(items_of(questionnaire), ensure_ascii=False, indent=2),
        "scoring": json.dumps(scoring_of(questionnaire), ensure_ascii=False, indent=2),
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
    questionnaire = editable_questionnaire(request, uuid)
    items, scoring = items_of(questionnaire), scoring_of(questionnaire)
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
    questionnaire = editable_questionnaire(request, uuid)
    scoring = scoring_of(questionnaire)
    scoring["scores"] = [rule for rule in scoring.get("scores") or [] if rule.get("code") != code]
    _save(request, questionnaire, items_of(questionnaire), scoring)
    return redirect(f"{reverse('followups:questionnaire-detail', args=[questionnaire.uuid])}#scores")


urlpatterns = [
    path("questionnaires/<uuid:uuid>/items/new/", item_add, name="questionnaire-item-add"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/", item_edit, name="questionnaire-item-edit"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/remove/", item_remove, name="questionnaire-item-remove"),
    path("questionnaires/<uuid:uuid>/items/<str:link_id>/move/", item_move, name="questionnaire-item-move"),
    path("questionnaires/<uuid:uuid>/json/", json_edit, name="questionnaire-json"),
    path("questionnaires/<uuid:uuid>/scores/new/", score_edit, name="questionnaire-score-add"),
    path("questionnaires/<uuid:uuid>/scores/<slug:code>/", score_edit, name="questionnaire-score-edit"),
    path("questionnaires/<uuid:uuid>/scores/<slug:code>/remove/", score_remove, name="questionnaire-score-remove"),
]
