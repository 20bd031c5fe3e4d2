"""Strict environment readers: a malformed value stops start-up with the variable's name."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from hcrm.env import Env


@pytest.fixture
def env(monkeypatch):
    for name in ("HCRM_T_FLAG", "HCRM_T_NUMBER", "HCRM_T_LIST", "HCRM_T_URL", "HCRM_T_ZONE", "HCRM_T_PATH"):
        monkeypatch.delenv(name, raising=False)
    return Env()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), (" Yes ", True), ("ON", True), ("0", False), ("false", False), ("no", False)],
)
def test_bool_reads_the_usual_spellings(env, monkeypatch, raw, expected):
    monkeypatch.setenv("HCRM_T_FLAG", raw)

    assert env.bool("HCRM_T_FLAG") is expected


def test_bool_rejects_anything_else_naming_the_variable(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_FLAG", "maybe")

    with pytest.raises(ImproperlyConfigured) as error:
        env.bool("HCRM_T_FLAG")

    assert str(error.value) == "HCRM_T_FLAG: expected true or false, got 'maybe'."


def test_missing_variable_without_default_is_required(env):
    with pytest.raises(ImproperlyConfigured) as error:
        env.str("HCRM_T_FLAG")

    assert str(error.value) == "HCRM_T_FLAG: this setting is required."


def test_empty_variable_falls_back_to_the_default(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_FLAG", "")

    assert env.bool("HCRM_T_FLAG", default=True) is True
    assert env.str("HCRM_T_FLAG", default="fallback") == "fallback"


def test_int_parses_and_enforces_the_minimum(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_NUMBER", "12")
    assert env.int("HCRM_T_NUMBER", minimum=1) == 12

    monkeypatch.setenv("HCRM_T_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured) as too_small:
        env.int("HCRM_T_NUMBER", minimum=1)
    assert str(too_small.value) == "HCRM_T_NUMBER: must be at least 1, got 0."

    monkeypatch.setenv("HCRM_T_NUMBER", "twelve")
    with pytest.raises(ImproperlyConfigured) as not_a_number:
        env.int("HCRM_T_NUMBER")
    assert str(not_a_number.value) == "HCRM_T_NUMBER: expected a whole number, got 'twelve'."


def test_list_splits_on_commas_and_drops_blanks(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_LIST", " a.example , b.example,, ")

    assert env.list("HCRM_T_LIST") == ["a.example", "b.example"]
    assert env.list("HCRM_T_MISSING_LIST", default=["x"]) == ["x"]


def test_choice_accepts_only_listed_values(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_FLAG", "fr")

    assert env.choice("HCRM_T_MISSING", ["en", "zh-hans"], default="en") == "en"
    with pytest.raises(ImproperlyConfigured) as error:
        env.choice("HCRM_T_FLAG", ["en", "zh-hans"])
    assert str(error.value) == "HCRM_T_FLAG: expected one of en, zh-hans, got 'fr'."


def test_timezone_must_be_known(env, monkeypatch):
    assert env.timezone("HCRM_T_ZONE", default="Asia/Shanghai") == "Asia/Shanghai"

    monkeypatch.setenv("HCRM_T_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ImproperlyConfigured) as error:
        env.timezone("HCRM_T_ZONE", default="UTC")
    assert str(error.value) == "HCRM_T_ZONE: unknown time zone 'Mars/Olympus_Mons'."


def test_dotted_path_must_look_like_a_python_path(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_PATH", "integrations.channels.backends.MemoryBackend")
    assert env.dotted_path("HCRM_T_PATH") == "integrations.channels.backends.MemoryBackend"

    monkeypatch.setenv("HCRM_T_PATH", "integrations/channels/backends.py")
    with pytest.raises(ImproperlyConfigured) as error:
        env.dotted_path("HCRM_T_PATH")
    assert str(error.value) == "HCRM_T_PATH: expected a dotted Python path, got 'integrations/channels/backends.py'."


def test_database_reads_postgres_and_sqlite_urls(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_URL", "postgres://hcrm:secret@db.internal:5433/hcrm")

    config = env.database("HCRM_T_URL", default="sqlite:///unused.sqlite3")

    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["NAME"], config["USER"], config["HOST"], config["PORT"]) == ("hcrm", "hcrm", "db.internal", 5433)
    sqlite = env.database("HCRM_T_MISSING_URL", default="sqlite:////srv/hcrm/hcrm.sqlite3")
    assert (sqlite["ENGINE"], sqlite["NAME"]) == ("django.db.backends.sqlite3", "/srv/hcrm/hcrm.sqlite3")


def test_database_error_hides_the_password(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_URL", "mysql://hcrm:secret@db.internal/hcrm")

    with pytest.raises(ImproperlyConfigured) as error:
        env.database("HCRM_T_URL", default="sqlite:///unused.sqlite3")

    assert str(error.value) == (
        "HCRM_T_URL: expected a sqlite:// or postgres:// URL, got 'mysql://hcrm:***@db.internal/hcrm'."
    )
    assert "secret" not in str(error.value)


def test_database_url_must_name_a_database(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_URL", "postgres://hcrm:secret@db.internal:5432/")

    with pytest.raises(ImproperlyConfigured) as error:
        env.database("HCRM_T_URL", default="sqlite:///unused.sqlite3")

    assert str(error.value) == "HCRM_T_URL: the URL names no database."


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/14", "rediss://cache.internal:6380", "redis://cache/"])
def test_redis_url_accepts_host_port_and_database(env, monkeypatch, url):
    monkeypatch.setenv("HCRM_T_URL", url)

    assert env.redis_url("HCRM_T_URL") == url


def test_redis_url_is_optional_but_strict(env, monkeypatch):
    assert env.redis_url("HCRM_T_URL") is None

    monkeypatch.setenv("HCRM_T_URL", "redis://:hunter2@cache.internal/cache")
    with pytest.raises(ImproperlyConfigured) as error:
        env.redis_url("HCRM_T_URL")
    assert str(error.value) == "HCRM_T_URL: expected redis://host:port/db, got 'redis://:***@cache.internal/cache'."


def test_email_url_gives_django_email_settings(env, monkeypatch):
    monkeypatch.setenv("HCRM_T_URL", "smtp+tls://mailer:pw@smtp.hospital.cn:587")

    config = env.email_url("HCRM_T_URL", default="consolemail://")

    assert config["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (config["EMAIL_HOST"], config["EMAIL_PORT"], config["EMAIL_USE_TLS"]) == ("smtp.hospital.cn", 587, True)
    assert env.email_url("HCRM_T_MISSING_URL", default="memorymail://")["EMAIL_BACKEND"] == (
        "django.core.mail.backends.locmem.EmailBackend"
    )
