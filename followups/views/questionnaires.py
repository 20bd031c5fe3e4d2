"""Console pages for questionnaires: list, metadata, the builder's overview, preview, versions, FHIR files.

The builder's editing pages are in `followups.views.builder`. Questionnaires hold no patient data, so
these pages write no read-audit entries.
"""

from __future__ import annotations

import copy
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from followups.builder import condition_text
from followups.fhir import ImportProblem, questionnaire_resource
from followups.forms import FilterForm, ImportForm, QuestionnaireForm, answers_from_post, form_rows
from followups.models import Questionnaire, QuestionnaireVersion
from followups.scoring import scores_compute
from followups.selectors import questionnaire_editable_by, questionnaires_filtered
from followups.services import answers_for, questionnaire_import, questionnaire_save

EDIT = ("followups.change_questionnaire", "followups.change_questionnaireversion", "followups.add_questionnaireversion")


def questionnaire_of(uuid) -> Questionnaire:
    return get_object_or_404(Questionnaire.objects.select_related("current_version"), uuid=uuid)


def editable_questionnaire(request: HttpRequest, uuid) -> Questionnaire:
    """The questionnaire, if the user may change it (department heads: those of their own departments only)."""
    questionnaire = questionnaire_of(uuid)
    if not questionnaire_editable_by(request.user, questionnaire):
        raise PermissionDenied
    return questionnaire


def items_of(questionnaire: Questionnaire) -> list[dict]:
    return copy.deepcopy(questionnaire.current_version.items) if questionnaire.current_version else []


def scoring_of(questionnaire: Questionnaire) -> dict:
    return copy.deepcopy(questionnaire.current_version.scoring) if questionnaire.current_version else {}


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
    form = QuestionnaireForm(request.POST or None, initial=initial, user=request.user)
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
    return _metadata_form(request, editable_questionnaire(request, uuid))


@login_required
@permission_required("followups.view_questionnaire", raise_exception=True)
def questionnaire_detail(request: HttpRequest, uuid) -> HttpResponse:
    """The builder: the item tree with its actions, the scoring rules and the versions."""
    questionnaire = questionnaire_of(uuid)
    versions = questionnaire.versions.select_related("created_by").annotate(answered=Count("responses"))
    items = items_of(questionnaire)
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
            "scores": scoring_of(questionnaire).get("scores") or [],
            "versions": versions,
            "can_edit": request.user.has_perms(EDIT) and questionnaire_editable_by(request.user, questionnaire),
            "answered": bool(questionnaire.current_version and questionnaire.current_version.responses.exists()),
        },
    )


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
    questionnaire = questionnaire_of(uuid)
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
    questionnaire = questionnaire_of(uuid)
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
        except PermissionDenied as refusal:
            problems = [str(refusal)]
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
    path("questionnaires/<uuid:uuid>/preview/", preview, name="questionnaire-preview"),
    path("questionnaires/<uuid:uuid>/export/", export, name="questionnaire-export"),
]
