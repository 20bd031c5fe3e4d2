"""Console pages of the outbox: the message list, one message, and the template editor."""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from hcrm.audit import Event, audit_read
from patients.models import MessageChannel, MessagePurpose, MessageStatus, MessageTemplate
from patients.selectors.archive import patients_visible_to
from patients.selectors.messages import (
    MESSAGE_VARIABLES,
    messages_visible_to,
    template_errors,
    template_preview_context,
    template_render,
)
from patients.services import messages as outbox
from patients.views.archive import PAGE_SIZE, _Page, _query_without_page


class OutboxFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), choices=[("", gettext_lazy("Any status")), *MessageStatus.choices], required=False
    )
    purpose = forms.ChoiceField(
        label=gettext_lazy("Purpose"),
        choices=[("", gettext_lazy("Any purpose")), *MessagePurpose.choices],
        required=False,
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"),
        choices=[("", gettext_lazy("Any channel")), *MessageChannel.choices],
        required=False,
    )
    created_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    mrn = forms.CharField(label=gettext_lazy("Patient MRN"), required=False)

    def apply(self, outbox_messages):
        data = self.cleaned_data
        for field in ("status", "purpose", "channel"):
            if data[field]:
                outbox_messages = outbox_messages.filter(**{field: data[field]})
        if data["created_from"]:
            outbox_messages = outbox_messages.filter(created_at__date__gte=data["created_from"])
        if data["created_to"]:
            outbox_messages = outbox_messages.filter(created_at__date__lte=data["created_to"])
        if data["mrn"]:
            outbox_messages = outbox_messages.filter(patient__mrn=data["mrn"].strip().upper())
        return outbox_messages


@login_required
@permission_required("patients.view_outboundmessage", raise_exception=True)
def outbox_list(request: HttpRequest) -> HttpResponse:
    form = OutboxFilterForm(request.GET or None)
    rows = messages_visible_to(request.user).order_by("-created_at", "-id")
    if form.is_valid():
        rows = form.apply(rows)
    try:
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        number = 1
    page = _Page(list(rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]), number)
    audit_read(
        event=Event.LIST,
        details={"record": "message", "patients": sorted({str(m.patient.uuid) for m in page.object_list})},
    )
    return render(
        request,
        "patients/messages/list.html",
        {"form": form, "page": page, "query_string": _query_without_page(request)},
    )


@login_required
@permission_required("patients.view_outboundmessage", raise_exception=True)
def outbox_detail(request: HttpRequest, uuid) -> HttpResponse:
    message = get_object_or_404(messages_visible_to(request.user), uuid=uuid)
    audit_read(event=Event.VIEW, instance=message)
    return render(
        request, "patients/messages/detail.html", {"message": message, "contact": getattr(message, "contact", None)}
    )


@login_required
@require_POST
@permission_required("patients.change_outboundmessage", raise_exception=True)
def outbox_withdraw(request: HttpRequest, uuid) -> HttpResponse:
    message = get_object_or_404(messages_visible_to(request.user), uuid=uuid)
    if outbox.message_withdraw(message=message, actor=request.user, reason=request.POST.get("reason", "")):
        flash.success(request, _("The message was withdrawn."))
    else:
        flash.error(request, _("Too late: the message is %(status)s.") % {"status": message.get_status_display()})
    return redirect("patients:message-detail", uuid=message.uuid)


@login_required
@require_POST
@permission_required("patients.change_outboundmessage", raise_exception=True)
def outbox_resend(request: HttpRequest, uuid) -> HttpResponse:
    message = get_object_or_404(messages_visible_to(request.user), uuid=uuid)
    try:
        outbox.message_resend(actor=request.user, message=message)
    except ValidationError as error:
        flash.error(request, " ".join(error.messages))
    else:
        flash.success(request, _("The message is queued again."))
    return redirect("patients:message-detail", uuid=message.uuid)


# --- Templates ------------------------------------------------------------------------------------------


class TemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["code", "name", "purpose", "channel", "language", "subject", "body", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}

    def _post_clean(self):
        pass  # the service validates, including the variables

    def add_service_errors(self, error: ValidationError) -> None:
        for field, problems in error.error_dict.items():
            self.add_error(field if field in self.fields else None, problems)


class PreviewForm(forms.Form):
    mrn = forms.CharField(label=gettext_lazy("Sample patient (MRN)"), required=False)


@login_required
@permission_required("patients.view_messagetemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    templates = MessageTemplate.objects.order_by("code", "channel", "language")
    return render(request, "patients/messages/templates.html", {"templates": templates})


@login_required
@permission_required("patients.view_messagetemplate", raise_exception=True)
def template_edit(request: HttpRequest, uuid=None) -> HttpResponse:
    """Create or edit a template; unknown variables are shown as errors; a preview fills it for a sample patient."""
    template = get_object_or_404(MessageTemplate, uuid=uuid) if uuid else None
    can_change = request.user.has_perm(
        "patients.change_messagetemplate" if template else "patients.add_messagetemplate"
    )
    form = TemplateForm(request.POST or None, instance=template)
    preview_form = PreviewForm(request.GET or None)
    if request.method == "POST":
        if not can_change:
            return HttpResponse(status=403)
        if form.is_valid():
            try:
                saved = outbox.message_template_save(actor=request.user, template=template, data=form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                flash.success(request, _("Template saved."))
                return redirect("patients:message-template-edit", uuid=saved.uuid)
    sample = None
    if preview_form.is_valid() and preview_form.cleaned_data["mrn"]:
        sample = patients_visible_to(request.user).filter(mrn=preview_form.cleaned_data["mrn"].strip().upper()).first()
    preview = None
    source = form.instance if template else None
    if request.method == "POST" and form.is_bound:
        source = MessageTemplate(subject=form.data.get("subject", ""), body=form.data.get("body", ""))
    if source is not None and not template_errors(source.body) and not template_errors(source.subject):
        variables = template_preview_context(sample, None)
        preview = {
            "subject": template_render(source.subject, variables),
            "body": template_render(source.body, variables),
        }
    return render(
        request,
        "patients/messages/template_form.html",
        {
            "form": form,
            "template": template,
            "can_change": can_change,
            "variables": sorted(MESSAGE_VARIABLES.items()),
            "preview": preview,
            "preview_form": preview_form,
            "sample": sample,
            "sample_missing": preview_form.is_valid() and preview_form.cleaned_data["mrn"] and sample is None,
        },
    )


urlpatterns = [
    path("", outbox_list, name="message-list"),
    path("<uuid:uuid>/", outbox_detail, name="message-detail"),
    path("<uuid:uuid>/withdraw/", outbox_withdraw, name="message-withdraw"),
    path("<uuid:uuid>/resend/", outbox_resend, name="message-resend"),
    path("templates/", template_list, name="message-template-list"),
    path("templates/new/", template_edit, name="message-template-create"),
    path("templates/<uuid:uuid>/", template_edit, name="message-template-edit"),
]
