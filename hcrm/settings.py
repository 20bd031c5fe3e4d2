"""HCRM settings, read from the environment (and an optional `.env` file).

The embedded default needs nothing set but DEBUG: SQLite in `var/`, Celery on
kombu's filesystem transport, a file cache. Production sets DATABASE_URL,
REDIS_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from hcrm.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = Env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=None)
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY: this setting is required when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-debug"  # noqa: S105 (DEBUG only)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_AGE = env.int("SESSION_HOURS", default=8, minimum=1) * 3600
# Django's database sessions, read by a prepared statement (hcrm/sessions.py).
SESSION_ENGINE = "hcrm.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "auditlog",
    "axes",
    "hcrm",
    "patients",
    "appointments",
    "followups",
    "consultations",
    "care",
    "integrations",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "hcrm.audit.AuditContextMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "hcrm.urls"
WSGI_APPLICATION = "hcrm.wsgi.application"
AUTH_USER_MODEL = "hcrm.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "hcrm.context_processors.console",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": env.database("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'hcrm.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets the web app read while the worker writes; IMMEDIATE takes the
        # write lock up front so two writers queue instead of failing.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -----------------------------------------------------------
REDIS_URL = env.redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
    broker_folder = VAR_DIR / "broker"
    for folder in ("queue", "processed", "control"):
        (broker_folder / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_folder / "queue"),
        "data_folder_out": str(broker_folder / "queue"),
        "processed_folder": str(broker_folder / "processed"),
        "control_folder": str(broker_folder / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_TASK_DEFAULT_QUEUE = "default"
# Task modules outside an app's tasks.py that the worker must load.
CELERY_IMPORTS = ["integrations.reprocessing", "integrations.fhir.tasks"]
CELERY_TASK_ROUTES = {
    "integrations.hl7v2.*": {"queue": "hl7"},
    "patients.tasks.messages.*": {"queue": "messages"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "hcrm.tasks.sessions_clear_expired",
        "schedule": timedelta(hours=6),
    },
    "messages-dispatch-due": {
        "task": "patients.tasks.messages.messages_dispatch_due",
        "schedule": timedelta(seconds=30),
    },
    "patient-stats-recompute": {
        # 02:30 in Asia/Shanghai (Celery runs on UTC): visits, spending and RFM scores of every patient.
        "task": "patients.tasks.segments.patient_stats_recompute_all",
        "schedule": crontab(hour=18, minute=30),
    },
    "messages-fail-interrupted": {
        "task": "patients.tasks.messages.messages_fail_interrupted",
        "schedule": timedelta(minutes=5),
    },
    "followups-sweep": {
        # Catch-up for follow-up tasks the live triggers missed (bulk imports, a listener's failure).
        "task": "followups.tasks.followups_sweep_recent",
        "schedule": timedelta(hours=1),
    },
    "followups-links-send": {
        "task": "followups.tasks.followup_links_send_due",
        "schedule": timedelta(minutes=5),
    },
    "followups-link-reminders": {
        "task": "followups.tasks.followup_link_reminders_send",
        "schedule": timedelta(hours=1),
    },
    "followups-alerts-escalate": {
        # Escalates alerts nobody acknowledged in time, and retries staff messages about alerts.
        "task": "followups.alerts_escalate",
        "schedule": timedelta(minutes=2),
    },
    "appointments-schedules-generate": {
        # 01:00 in Asia/Shanghai: sessions of the weekly templates for SCHEDULE_WEEKS_AHEAD weeks.
        "task": "appointments.tasks.schedules_generate_ahead",
        "schedule": crontab(hour=17, minute=0),
    },
    "appointments-holds-expire": {
        "task": "appointments.tasks.holds_expire",
        "schedule": timedelta(minutes=1),
    },
    "appointments-reminders-queue": {
        "task": "appointments.tasks.reminders_queue",
        "schedule": timedelta(minutes=5),
    },
    "appointments-no-shows-mark": {
        "task": "appointments.tasks.no_shows_mark",
        "schedule": timedelta(minutes=15),
    },
    "appointments-waitlist-offers-lapsed": {
        "task": "appointments.tasks.waitlist_offers_lapsed",
        "schedule": timedelta(minutes=5),
    },
    "fhir-pull-due": {
        # Remote FHIR servers (integrations.FhirRemote) are polled for resources changed since the last run.
        "task": "integrations.fhir.tasks.fhir_pull_due",
        "schedule": timedelta(minutes=5),
    },
}

# --- Outbound channels ------------------------------------------------------------
# Dotted paths to channel backends, so a domain app can send without knowing
# which provider exists (like Django's EMAIL_BACKEND).
CHANNEL_BACKENDS = {
    "sms": env.dotted_path("SMS_BACKEND", default="integrations.channels.backends.ConsoleBackend"),
    "email": env.dotted_path("EMAIL_CHANNEL_BACKEND", default="integrations.channels.backends.EmailBackend"),
}
SMS_GATEWAY_URL = env.str("SMS_GATEWAY_URL", default="")
SMS_GATEWAY_AUTH_HEADER = env.str("SMS_GATEWAY_AUTH_HEADER", default="")
SMS_GATEWAY_BODY_TEMPLATE = env.str(
    "SMS_GATEWAY_BODY_TEMPLATE", default='{"to": "{to}", "text": "{body}", "reference": "{reference}"}'
)
SMS_GATEWAY_ID_FIELD = env.str("SMS_GATEWAY_ID_FIELD", default="id")
SMS_GATEWAY_TIMEOUT = env.int("SMS_GATEWAY_TIMEOUT", default=5, minimum=1)
SMS_GATEWAY_SENDER = env.str("SMS_GATEWAY_SENDER", default="")
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST", "")
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hcrm@localhost")

MESSAGE_MAX_ATTEMPTS = env.int("MESSAGE_MAX_ATTEMPTS", default=5, minimum=1)

# --- Integrations on/off ------------------------------------------------------------
HL7_ENABLED = env.bool("HL7_ENABLED", default=True)
FHIR_ENABLED = env.bool("FHIR_ENABLED", default=True)

# --- Authentication and lockout ----------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "hcrm.views.lockout_response"
AXES_VERBOSE = False

# --- Audit ------------------------------------------------------------------------
AUDITLOG_LOGENTRY_MODEL = "hcrm.AuditEntry"
AUDITLOG_MASK_CALLABLE = "hcrm.masking.mask_for_audit"
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_DISABLE_REMOTE_ADDR = False
BREAK_GLASS_MINUTES = env.int("BREAK_GLASS_MINUTES", default=30, minimum=1)

# --- API ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hcrm.rest.BearerTokenAuthentication",
        "hcrm.rest.IntegrationKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["hcrm.rest.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "hcrm.rest.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "hcrm.rest.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"anon": "60/min", "user": "1200/min", "login": "30/min"},
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HCRM API",
    "DESCRIPTION": "Patient relationship management for Traditional Chinese Medicine hospitals.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Choice sets that share a field name get names of their own.
    "ENUM_NAME_OVERRIDES": {
        "LanguageEnum": "patients.models.archive.Language",
        "ConsentChannelEnum": "patients.models.archive.Channel",
        "ConsentPurposeEnum": "patients.models.archive.ConsentPurpose",
        "MessageChannelEnum": "patients.models.messages.MessageChannel",
        "MessagePurposeEnum": "patients.models.messages.MessagePurpose",
        "ContactChannelEnum": "patients.models.contacts.ContactChannel",
        "ContactPurposeEnum": "patients.models.contacts.ContactPurpose",
        "MatchStatusEnum": "patients.models.identity.MatchStatus",
        "ImportStatusEnum": "patients.models.imports.ImportStatus",
        "BookingChannelEnum": "appointments.models.schedules.BookingChannel",
        "AlertSeverityEnum": "followups.models.alerts.Severity",
        "StaffRoleEnum": "hcrm.roles.Role",
    },
}

# --- Languages and time -------------------------------------------------------------
LANGUAGE_CODE = env.choice("LANGUAGE_CODE", ["zh-hans", "en"], default="zh-hans")
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.timezone("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files --------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATIC_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Logging -------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"expected_refusals": {"()": "hcrm.logs.ExpectedRefusalFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR"], "INFO")},
    # A booking refused because the place was just taken is an answer, not a warning (see hcrm.logs).
    "loggers": {"axes": {"level": "WARNING"}, "django.request": {"filters": ["expected_refusals"]}},
}

# --- Hospital -------------------------------------------------------------------------
HOSPITAL_NAME = env.str("HOSPITAL_NAME", default="HCRM 中医医院")
HOSPITAL_PHONE = env.str("HOSPITAL_PHONE", default="")
# The hospital's postal address: the return address of follow-up letters.
HOSPITAL_ADDRESS = env.str("HOSPITAL_ADDRESS", default="")
# Where patients reach the portal: links in messages (waitlist offers, rebooking) start with it.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Weeks of clinic sessions kept generated ahead of today from the weekly templates.
SCHEDULE_WEEKS_AHEAD = env.int("SCHEDULE_WEEKS_AHEAD", default=4, minimum=1)
MRN_PREFIX = env.str("MRN_PREFIX", default="M")
# Largest patient spreadsheet (CSV or XLSX) accepted for import, in megabytes.
PATIENT_IMPORT_MAX_MB = env.int("PATIENT_IMPORT_MAX_MB", default=20, minimum=1)
SILENCED_SYSTEM_CHECKS = [
    # Lockout is per account: staff behind one hospital NAT address share an IP,
    # so locking by address would lock out a whole ward after one typist's mistakes.
    "axes.W006",
]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Covering indexes (INCLUDE) are PostgreSQL's; on the embedded SQLite they are plain indexes.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
# Follow-up links sent by SMS or email: days a link works, and days before an unanswered one is reminded (once).
FOLLOWUP_LINK_DAYS = env.int("FOLLOWUP_LINK_DAYS", default=7, minimum=1)
FOLLOWUP_REMINDER_DAYS = env.int("FOLLOWUP_REMINDER_DAYS", default=3, minimum=1)
# Follow-up alerts: minutes an alert may stay unacknowledged before it is escalated, for rules that do not say.
ALERT_ESCALATE_AFTER_MINUTES = env.int("ALERT_ESCALATE_AFTER_MINUTES", default=120, minimum=1)
# Follow-up letters: days the link printed on a letter works (post is slower than SMS), and the TrueType
# font (a .ttf, or a .ttc whose first face is used) embedded for Chinese; without the file, the PDF reader's
# own STSong-Light is used.
FOLLOWUP_LETTER_LINK_DAYS = env.int("FOLLOWUP_LETTER_LINK_DAYS", default=30, minimum=1)
LETTER_FONT_PATH = env.str("LETTER_FONT_PATH", default="/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# Statistics: how long a dashboard's figures are reused for the same filters (seconds; 0: never), and the days
# after its due date a follow-up still counts as done on time.
ANALYTICS_CACHE_SECONDS = env.int("ANALYTICS_CACHE_SECONDS", default=300, minimum=0)
ANALYTICS_ON_TIME_GRACE_DAYS = env.int("ANALYTICS_ON_TIME_GRACE_DAYS", default=1, minimum=0)
