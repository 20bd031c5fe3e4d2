"""Letter follow-ups in the console: print a batch of letters (chosen, or every one due), print a batch again,
and find the task of a letter that came back by the reference printed on it."""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from followups.models import FollowUpChannel, LetterBatch
from followups.selectors import (
    lead_department_ids,
    lead_departments,
    letter_tasks_to_print,
    tasks_visible_to,
    window,
    worklist_tasks,
)
from followups.services import letters_print, letters_reprint
from followups.services.letters import MAX_LETTERS
from followups.views.worklists import back_url

LETTER_PERMISSIONS = [
    "followups.view_followuptask",
    "followups.claim_followuptask",
    "followups.print_followup_letters",
]
REFERENCE_LENGTH = 10


class TaskListField(forms.Field):
    """Tasks by public id; which of them the user may print is the view's business."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[uuid.UUID]:
        try:
            return [uuid.UUID(str(one)) for one in value or ()]
        except ValueError:
            raise ValidationError(_("Choose follow-ups from the worklist."), code="invalid") from None


class PrintForm(forms.Form):
    task = TaskListField(label=gettext_lazy("Follow-ups"), required=False)
    all_due = forms.BooleanField(label=gettext_lazy("Every letter due"), required=False)
    department = forms.SlugField(label=gettext_lazy("Department"), required=False)

    def clean(self):
        data = super().clean()
        if not data.get("task") and not data.get("all_due"):
            raise ValidationError({"task": _("Choose the follow-ups to print, or print every letter due.")})
        if len(data.get("task") or ()) > MAX_LETTERS:
            raise ValidationError({"task": _("Print at most %(count)s letters at once.") % {"count": MAX_LETTERS}})
        return data


def _pdf(content: bytes, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _refused(request: HttpRequest, errors: dict[str, list[str]], *, title: str = "") -> HttpResponse:
    context = {"errors": errors, "back": back_url(request), "title": title or _("No letters printed")}
    return render(request, "followups/letters/refused.html", context, status=400)


@login_required
@require_POST
@permission_required(LETTER_PERMISSIONS, raise_exception=True)
def print_letters(request: HttpRequest) -> HttpResponse:
    """The letters of the chosen tasks, or of every letter task due on the worklist, as one PDF to print."""
    form = PrintForm(request.POST)
    if not form.is_valid():
        return _refused(request, form.errors)
    department = None
    code = form.cleaned_data["department"]
    if code:
        department = next((item for item in lead_departments(request.user) if item.code == code), None)
        if department is None:
            raise Http404  # another department is answered like one that does not exist
    if form.cleaned_data["all_due"]:
        chosen = letter_tasks_to_print(worklist_tasks(request.user, department=department), window(), limit=MAX_LETTERS)
    else:
        chosen = list(
            tasks_visible_to(request.user).filter(uuid__in=form.cleaned_data["task"], channel=FollowUpChannel.LETTER)
        )
    if not chosen:
        return _refused(request, {"task": [_("There is no letter to print.")]})
    try:
        printed = letters_print(actor=request.user, tasks=chosen, department=department)
    except ValidationError as error:
        return _refused(request, error.message_dict)
    for skipped in printed.skipped:
        messages.warning(
            request,
            _("No letter for %(patient)s: %(reason)s.")
            % {"patient": skipped.task.patient.name, "reason": skipped.reason},
        )
    return _pdf(printed.pdf, f"letters-{timezone.localdate():%Y%m%d}-{printed.batch.uuid.hex[:8]}.pdf")


def batches_visible_to(user):
    """Batches one printed, and those printed from the department worklists one leads."""
    led = lead_department_ids(user)
    if led is None:
        return LetterBatch.objects.all()
    return LetterBatch.objects.filter(printed_by=user) | LetterBatch.objects.filter(department_id__in=sorted(led))


@login_required
@require_POST
@permission_required(LETTER_PERMISSIONS, raise_exception=True)
def reprint(request: HttpRequest, uuid) -> HttpResponse:
    """A batch printed again (its letters still awaiting answers): no new attempts, audited."""
    batch = get_object_or_404(batches_visible_to(request.user), uuid=uuid)
    try:
        content = letters_reprint(actor=request.user, batch=batch)
    except ValidationError as error:
        return _refused(request, error.message_dict)
    return _pdf(content, f"letters-{batch.created_at:%Y%m%d}-{batch.uuid.hex[:8]}-again.pdf")


class ReferenceForm(forms.Form):
    reference = forms.RegexField(
        label=gettext_lazy("Reference on the letter"),
        regex=rf"^\s*[0-9A-Fa-f]{{{REFERENCE_LENGTH}}}\s*$",
        error_messages={"invalid": gettext_lazy("A reference is the 10 letters and digits printed on the letter.")},
    )


@login_required
@permission_required(["followups.view_followuptask", "followups.claim_followuptask"], raise_exception=True)
def returned(request: HttpRequest) -> HttpResponse:
    """Open the answer entry for the letter whose reference is typed in (or read by a barcode scanner)."""
    form = ReferenceForm(request.GET)
    if not form.is_valid():
        return _refused(request, form.errors, title=_("No letter with this reference"))
    prefix = form.cleaned_data["reference"].strip().lower()
    # The reference is the start of the task's UUID: a range on the unique index, on every database.
    low = uuid.UUID(prefix.ljust(32, "0"))
    high = uuid.UUID(prefix.ljust(32, "f"))
    matches = list(
        tasks_visible_to(request.user).filter(channel=FollowUpChannel.LETTER, uuid__gte=low, uuid__lte=high)[:2]
    )
    if len(matches) != 1:
        raise Http404
    return redirect(reverse("followups:task-call", args=[matches[0].uuid]))


urlpatterns = [
    path("letters/print/", print_letters, name="letters-print"),
    path("letters/batches/<uuid:uuid>/reprint/", reprint, name="letters-reprint"),
    path("letters/returned/", returned, name="letters-returned"),
]
