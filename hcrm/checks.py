"""Start-up checks: configured backends must import."""

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

_SETTING_FOR_CHANNEL = {"sms": "SMS_BACKEND", "email": "EMAIL_CHANNEL_BACKEND"}


@register()
def channel_backends_importable(app_configs, **kwargs):
    errors = []
    for channel, path in settings.CHANNEL_BACKENDS.items():
        variable = _SETTING_FOR_CHANNEL.get(channel, channel)
        try:
            backend = import_string(path)
        except ImportError as error:
            errors.append(Error(f"{variable}: cannot import {path!r} ({error}).", id="hcrm.E001"))
            continue
        try:
            backend()  # a backend checks its own settings when it is made
        except ImproperlyConfigured as error:
            errors.append(Error(str(error), id="hcrm.E002"))
    return errors
