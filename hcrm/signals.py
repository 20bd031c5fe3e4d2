"""Sign-ins, sign-outs and failed sign-ins go into the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from hcrm.audit import Event, audit_context_update, audit_read


@receiver(user_logged_in, dispatch_uid="hcrm.audit_login")
def audit_login(sender, request, user, **kwargs):
    audit_context_update(actor=user)
    audit_read(event=Event.LOGIN, instance=user)


@receiver(user_logged_out, dispatch_uid="hcrm.audit_logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        audit_read(event=Event.LOGOUT, instance=user)


@receiver(user_login_failed, dispatch_uid="hcrm.audit_login_failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    audit_read(event=Event.LOGIN_FAILED, details={"username": str(credentials.get("username", ""))[:150]})
