"""Console worklists of follow-up tasks: mine and my department's, by due bucket and channel; claim, reassign."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from followups.models import CloseReason, FollowUpChannel
from followups.selectors import (
    WORKLIST_LIMIT,
    WORKLIST_PAGES,
    Bucket,
    alerts_waiting_count,
    lead_department_ids,
    lead_departments,
    letter_batches_of,
    letters_posted,
    tasks_visible_to,
    window,
    worklist_counts,
    worklist_page,
    worklist_tasks,
)
from followups.services import task_claim, task_precheck, task_reassign
from followups.services.tasks import staff_of_department
from hcrm.audit import Event, audit_read

BUCKET_LABELS = {
    Bucket.OVERDUE: gettext_lazy("Overdue"),
    Bucket.TODAY: gettext_lazy("Due today"),
    Bucket.UPCOMING: pgettext_lazy("due", "Upcoming"),
}


class WorklistForm(forms.Form):
    when = forms.ChoiceField(choices=list(BUCKET_LABELS.items()), required=False)
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"), choices=[("", gettext_lazy("Any")), *FollowUpChannel.choices], required=False
    )
    page = forms.IntegerField(min_value=1, max_value=WORKLIST_PAGES, required=False)


@dataclass(frozen=True)
class WorklistPage:
    """What the shared pager shows of a worklist page."""

    number: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def _worklist(request: HttpRequest, tasks, *, title: str, department=None, departments=()) -> HttpResponse:
    form = WorklistForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "followups/worklists/list.html", {"form": form, "title": title}, status=400)
    data = form.cleaned_data if form.is_bound else {}
    bucket = data.get("when") or Bucket.TODAY
    channel = data.get("channel") or ""
    number = data.get("page") or 1
    when = window()
    counts = worklist_counts(tasks, when, bucket=bucket)
    rows = worklist_page(tasks, bucket=bucket, channel=channel, when=when, page=number)
    listed = counts[f"channel_{channel}"] if channel else counts[bucket]
    query = {"department": department.code if department else "", "when": bucket, "channel": channel}
    audit_read(
        event=Event.LIST,
        details={"record": "followup task", "part": bucket, "patients": sorted({str(t.patient.uuid) for t in rows})},
    )
    context = {
        "title": title,
        "form": form,
        "bucket": bucket,
        "channel": channel,
        "buckets": [(key, label, counts[key]) for key, label in BUCKET_LABELS.items()],
        "channels": [(value, label, counts[f"channel_{value}"]) for value, label in FollowUpChannel.choices],
        "tasks": rows,
        "page": WorklistPage(number=number, has_next=listed > number * WORKLIST_LIMIT),
        "query_string": urlencode({key: value for key, value in query.items() if value}),
        "department": department,
        "departments": departments,
        "can_reassign": department is not None and request.user.has_perm("followups.change_followuptask"),
        "can_claim": request.user.has_perm("followups.claim_followuptask"),
        "alerts_waiting": (
            alerts_waiting_count(request.user) if request.user.has_perm("followups.view_alert") else None
        ),
    }
    if channel == FollowUpChannel.LETTER:
        context |= _letter_context(request, rows)
    return render(request, "followups/worklists/list.html", context)


def _letter_context(request: HttpRequest, rows: list) -> dict:
    """The letter tab's extras: when each letter went out, printing, and the latest batches to print again."""
    can_print = request.user.has_perm("followups.print_followup_letters")
    posted = letters_posted(rows)
    for task in rows:
        task.letter_posted_at = posted.get(task.pk)
    return {
        "can_print_letters": can_print,
        "letter_batches": list(letter_batches_of(request.user)) if can_print else [],
    }


@login_required
@permission_required("followups.view_followuptask", raise_exception=True)
def my_worklist(request: HttpRequest) -> HttpResponse:
    """The signed-in staff member's tasks: assigned to them, claimed by them, or their role's in their departments."""
    return _worklist(request, worklist_tasks(request.user), title=_("My follow-ups"))


@login_required
@permission_required("followups.view_department_followuptask", raise_exception=True)
def department_worklist(request: HttpRequest) -> HttpResponse:
    """A department's open tasks, for its head (administrators: any department)."""
    departments = list(lead_departments(request.user))
    code = request.GET.get("department")
    if code:
        department = next((item for item in departments if item.code == code), None)
        if department is None:
            raise Http404  # another department is answered like one that does not exist
    elif departments:
        department = departments[0]
    else:
        raise Http404
    return _worklist(
        request,
        worklist_tasks(request.user, department=department),
        title=_("Follow-ups of %(department)s") % {"department": department.display_name},
        department=department,
        departments=departments,
    )


def back_url(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return reverse("followups:worklist")


@login_required
@require_POST
@permission_required(["followups.view_followuptask", "followups.claim_followuptask"], raise_exception=True)
def claim(request: HttpRequest, uuid) -> HttpResponse:
    """Take a task (only one person can hold it); then re-check that the patient may still be contacted."""
    task = get_object_or_404(tasks_visible_to(request.user).select_related("patient", "plan"), uuid=uuid)
    if not task_claim(task=task, actor=request.user):
        messages.error(request, _("Someone else has taken this task, or it is not waiting any more."))
        return redirect(back_url(request))
    # Re-checked as work starts: nobody phones a patient who died, is back in hospital or said no.
    reason = task_precheck(task=task)
    if reason:
        messages.warning(
            request,
            _("The task was closed instead: %(reason)s.") % {"reason": CloseReason(reason).label},
        )
    else:
        messages.success(request, _("The task is yours."))
    return redirect(back_url(request))


class ReassignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Give to"), to_field_name="uuid")

    def __init__(self, *args, department_id, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = staff_of_department(department_id)


@login_required
@permission_required(["followups.view_followuptask", "followups.change_followuptask"], raise_exception=True)
def reassign(request: HttpRequest, uuid) -> HttpResponse:
    """Give a task of a department one leads to a colleague of that department."""
    led = lead_department_ids(request.user)
    tasks = tasks_visible_to(request.user).select_related("patient", "department", "assignee")
    if led is not None:
        tasks = tasks.filter(department_id__in=sorted(led))
    task = get_object_or_404(tasks, uuid=uuid)
    form = ReassignForm(request.POST or None, department_id=task.department_id)
    if request.method == "POST" and form.is_valid():
        try:
            task_reassign(task=task, actor=request.user, assignee=form.cleaned_data["assignee"])
        except ValidationError as error:
            for message in error.messages:
                form.add_error("assignee", message)
        else:
            messages.success(request, _("The task has been reassigned."))
            return redirect(reverse("followups:department-worklist") + f"?department={task.department.code}")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "followups/worklists/reassign.html", {"task": task, "form": form}, status=status)


urlpatterns = [
    path("", my_worklist, name="worklist"),
    path("department/", department_worklist, name="department-worklist"),
    path("tasks/<uuid:uuid>/claim/", claim, name="task-claim"),
    path("tasks/<uuid:uuid>/reassign/", reassign, name="task-reassign"),
]
