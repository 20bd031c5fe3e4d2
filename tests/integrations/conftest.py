from tests.patients.outbox import no_quiet_hours, sms_template  # noqa: F401
