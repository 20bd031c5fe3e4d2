"""Test settings: the real settings, read from the environment, with test-only speed-ups.

With DATABASE_URL and REDIS_URL set, tests run on PostgreSQL and Redis; without
them, on SQLite with Celery tasks run in-process.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("SMS_BACKEND", "integrations.channels.backends.MemoryBackend")
os.environ.setdefault("EMAIL_URL", "memorymail://")

from hcrm.settings import *  # noqa: E402, F403
from hcrm.settings import REDIS_URL, REST_FRAMEWORK  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
if REDIS_URL:
    # A per-run prefix keeps throttle counters and cached values of earlier runs out of this one.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"hcrm-test-{os.getpid()}",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_TASK_ALWAYS_EAGER = True
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"anon": "10000/min", "user": "10000/min", "login": "10000/min"},
}
LANGUAGE_CODE = "en"
