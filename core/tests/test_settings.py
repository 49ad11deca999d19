import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "database": str(settings.DATABASES["default"]["NAME"]),
    "redis_url": settings.REDIS_URL,
    "redis_is_embedded": settings.REDIS_IS_EMBEDDED,
    "channel_hosts": [host["address"] for host in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]],
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "graph_url": settings.WHATSAPP_GRAPH_URL,
    "server_side_binding": settings.DATABASES["default"].get("OPTIONS", {}).get("server_side_binding"),
}))
"""
CONFIG_NAMES = [
    "DATABASE_URL",
    "DATABASE_SERVER_SIDE_BINDING",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "EMBEDDED_REDIS_PORT",
    "WHATSAPP_TOKEN",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "RECORDING_KEYS",
    "RECORDING_KEY_ID",
    "SUMMARY_BACKEND",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
]
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "kB3x9QfZ_2mLw7Rt-Vn4Hc8JpYs1Ue6Ga0DiOk5Xq_TzNb7Mr2Wv9Ly3Ch",
    "ALLOWED_HOSTS": "calls.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://calls.example.com",
    "WHATSAPP_TOKEN": "token",
    "WHATSAPP_APP_SECRET": "app-secret",
    "WHATSAPP_VERIFY_TOKEN": "verify-token",
    "RECORDING_KEYS": "2026a:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=",
}


def load_settings(**environment: str) -> subprocess.CompletedProcess:
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_NAMES}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + PRINT_SETTINGS],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_embedded_default_uses_sqlite_and_bundled_redis():
    result = load_settings()

    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["database"] == str(ROOT / "var" / "switchboard.sqlite3")
    assert values["redis_url"] == "redis://127.0.0.1:6380/0"
    assert values["redis_is_embedded"] is True
    assert values["channel_hosts"] == ["redis://127.0.0.1:6380/0"]
    assert values["broker"] == "redis://127.0.0.1:6380/0"


def test_settings_urls_switch_to_postgresql_and_external_redis():
    result = load_settings(
        DATABASE_URL="postgres://switchboard@db.internal:5432/switchboard",
        REDIS_URL="redis://cache.internal:6379/2",
    )

    values = json.loads(result.stdout)
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["database"] == "switchboard"
    assert values["redis_is_embedded"] is False
    assert values["channel_hosts"] == ["redis://cache.internal:6379/2"]
    assert values["broker"] == "redis://cache.internal:6379/2"
    assert values["server_side_binding"] is True


def test_settings_server_side_binding_can_be_turned_off():
    result = load_settings(
        DATABASE_URL="postgres://switchboard@db.internal:5432/switchboard",
        DATABASE_SERVER_SIDE_BINDING="false",
    )

    assert json.loads(result.stdout)["server_side_binding"] is False


def test_settings_debug_off_requires_secret_key():
    result = load_settings(DEBUG="false", ALLOWED_HOSTS="calls.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "secret_key",
    [
        "x",
        "a-long-random-production-secret",
        "ab" * 30,
        "django-insecure-" + "kB3x9QfZ_2mLw7Rt-Vn4Hc8JpYs1Ue6Ga0DiOk5",
    ],
    ids=["one-character", "short", "few-characters", "django-insecure"],
)
def test_settings_debug_off_refuses_a_weak_secret_key(secret_key):
    result = load_settings(**{**PRODUCTION, "SECRET_KEY": secret_key})

    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 random characters when DEBUG is off" in result.stderr


def test_settings_production_pass_the_deployment_check():
    clean = {name: value for name, value in os.environ.items() if name not in CONFIG_NAMES}

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**clean, **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (result.returncode, result.stdout.strip(), result.stderr) == (
        0,
        "System check identified no issues (0 silenced).",
        "",
    )


def test_settings_debug_off_requires_real_hosts():
    result = load_settings(**{**PRODUCTION, "ALLOWED_HOSTS": "*"})

    assert result.returncode != 0
    assert "ALLOWED_HOSTS must name the real host names" in result.stderr


def test_settings_debug_off_requires_whatsapp_secrets():
    result = load_settings(**{**PRODUCTION, "WHATSAPP_APP_SECRET": ""})

    assert result.returncode != 0
    assert "WHATSAPP_APP_SECRET" in result.stderr


@pytest.mark.parametrize(
    "keys",
    [
        {"RECORDING_KEYS": ""},
        {"RECORDING_KEYS": "2026a:c2hvcnQ="},
        {"RECORDING_KEY_ID": "2025z"},
        {"RECORDING_KEYS": "2026a:not base64!"},
        {"RECORDING_KEYS": "é:" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="},
    ],
    ids=["none", "too-short", "unknown-current-key", "not-base64", "not-ascii-id"],
)
def test_settings_debug_off_requires_recording_keys(keys):
    result = load_settings(**{**PRODUCTION, **keys})

    assert result.returncode != 0
    assert "RECORDING_KEYS must hold 32-byte keys" in result.stderr


def test_settings_refuse_an_unknown_summary_backend():
    result = load_settings(SUMMARY_BACKEND="gpt")

    assert result.returncode != 0
    assert "SUMMARY_BACKEND must be 'local' or 'openai'" in result.stderr


def test_settings_debug_off_with_every_secret_loads_and_talks_to_meta():
    result = load_settings(**PRODUCTION)

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["debug"] is False
    assert values["graph_url"] == "https://graph.facebook.com/v23.0"
