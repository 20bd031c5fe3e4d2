"""Console pages of the duplicate review queue: list, compare side by side, merge or keep apart, undo."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from hcrm.audit import Event, audit_read
from patients.selectors import patient_view
from patients.selectors.identity import match_candidates_visible_to, patient_merges_visible_to, patients_compared
from patients.services.identity import Decision, match_candidate_resolve, patient_merge_undo

PAGE_SIZE = 25


class _Page:
    def __init__(self, rows: list, number: int) -> None:
        self.object_list = rows[:PAGE_SIZE]
        self.number = number
        self.has_next = len(rows) > PAGE_SIZE
        self.has_previous = number > 1


def _page(request: HttpRequest, queryset) -> _Page:
    try:
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        number = 1
    return _Page(list(queryset[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]), number)


class ResolveForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[(Decision.MERGE, gettext_lazy("Merge")), (Decision.DIFFERENT, gettext_lazy("Different people"))]
    )
    survivor = forms.UUIDField(required=False, label=gettext_lazy("Record that survives"))
    reason = forms.CharField(
        label=gettext_lazy("Reason"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )


@login_required
@permission_required("patients.view_matchcandidate", raise_exception=True)
def identity_queue(request: HttpRequest) -> HttpResponse:
    """Open candidate pairs, most alike first."""
    page = _page(request, match_candidates_visible_to(request.user))
    rows = [
        {"candidate": candidate, "first": patient_view(request.user, candidate.patient_a),
         "second": patient_view(request.user, candidate.patient_b)}
        for candidate in page.object_list
    ]  # fmt: skip
    audit_read(
        event=Event.LIST,
        details={
            "match_candidates": len(rows),
            "patients": [str(p.uuid) for c in page.object_list for p in (c.patient_a, c.patient_b)],
        },
    )
    return render(request, "patients/identity/queue.html", {"rows": rows, "page": page})


@login_required
@permission_required("patients.view_matchcandidate", raise_exception=True)
def identity_compare(request: HttpRequest, uuid) -> HttpResponse:
    """Two records side by side, sensitive fields masked as the user's role requires."""
    candidate = get_object_or_404(match_candidates_visible_to(request.user, status=None), uuid=uuid)
    for patient in (candidate.patient_a, candidate.patient_b):
        audit_read(event=Event.VIEW, instance=patient, details={"match_candidate": str(candidate.uuid)})
    comparison = patients_compared(request.user, candidate.patient_a, candidate.patient_b)
    return render(
        request,
        "patients/identity/compare.html",
        {
            "candidate": candidate,
            "comparison": comparison,
            "form": ResolveForm(),
            "default_survivor": _older(candidate),
        },
    )


def _older(candidate):
    """The record registered first usually carries the hospital's history: offer it as the survivor."""
    return min((candidate.patient_a, candidate.patient_b), key=lambda patient: (patient.created_at, patient.pk))


@login_required
@require_POST
@permission_required("patients.resolve_matchcandidate", raise_exception=True)
def identity_resolve(request: HttpRequest, uuid) -> HttpResponse:
    candidate = get_object_or_404(match_candidates_visible_to(request.user), uuid=uuid)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose merge or different people."))
        return redirect("patients:identity-compare", uuid=candidate.uuid)
    data = form.cleaned_data
    survivor = {candidate.patient_a.uuid: candidate.patient_a, candidate.patient_b.uuid: candidate.patient_b}.get(
        data["survivor"]
    )
    try:
        merge = match_candidate_resolve(
            candidate=candidate, decision=data["decision"], actor=request.user, survivor=survivor, reason=data["reason"]
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("patients:identity-compare", uuid=candidate.uuid)
    if merge is None:
        messages.success(request, _("Recorded as different people; this pair will not be raised again."))
    else:
        messages.success(
            request,
            _("%(prior)s was merged into %(survivor)s. The merge can be undone from the merge history.")
            % {"prior": merge.prior.mrn, "survivor": merge.survivor.mrn},
        )
    return redirect("patients:identity-queue")


@login_required
@permission_required("patients.view_patientmerge", raise_exception=True)
def identity_merges(request: HttpRequest) -> HttpResponse:
    """Merges, newest first, each with its undo button."""
    page = _page(request, patient_merges_visible_to(request.user))
    rows = [
        {"merge": merge, "survivor": patient_view(request.user, merge.survivor),
         "prior": patient_view(request.user, merge.prior)}
        for merge in page.object_list
    ]  # fmt: skip
    audit_read(
        event=Event.LIST,
        details={
            "patient_merges": len(rows),
            "patients": [str(p.uuid) for m in page.object_list for p in (m.survivor, m.prior)],
        },
    )
    return render(request, "patients/identity/merges.html", {"rows": rows, "page": page})


@login_required
@require_POST
@permission_required("patients.resolve_matchcandidate", raise_exception=True)
def identity_merge_undo(request: HttpRequest, uuid) -> HttpResponse:
    merge = get_object_or_404(patient_merges_visible_to(request.user), uuid=uuid)
    try:
        patient_merge_undo(merge=merge, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("The merge was undone: %(prior)s has its records back.") % {"prior": merge.prior.mrn}
        )
    return redirect("patients:identity-merges")


urlpatterns = [
    path("", identity_queue, name="identity-queue"),
    path("merges/", identity_merges, name="identity-merges"),
    path("merges/<uuid:uuid>/undo/", identity_merge_undo, name="identity-merge-undo"),
    path("<uuid:uuid>/", identity_compare, name="identity-compare"),
    path("<uuid:uuid>/resolve/", identity_resolve, name="identity-resolve"),
]
