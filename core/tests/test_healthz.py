import pytest
from django.conf import settings
from django.test import override_settings

from core.tasks import ping


@pytest.mark.django_db
def test_healthz_ok_when_database_redis_and_worker_answer(client, celery_worker_process):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "redis": True,
        "celery": True,
    }
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
@override_settings(REDIS_URL="redis://127.0.0.1:1/0", HEALTHZ_TIMEOUT_S=0.5)
def test_healthz_503_when_redis_unreachable(client):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "error"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert "ConnectionError" in body["checks"]["redis"]["error"]
    assert body["checks"]["celery"]["ok"] is False


@pytest.mark.django_db
@override_settings(HEALTHZ_TIMEOUT_S=0.5, HEALTHZ_CELERY_QUEUE="no-worker-consumes-this")
def test_healthz_503_when_no_worker_answers(client, redis_server):
    response = client.get("/healthz")

    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["celery"]["ok"] is False
    assert "TimeoutError" in body["checks"]["celery"]["error"]


def test_ping_runs_in_a_real_worker_process(celery_worker_process):
    result = ping.apply_async(kwargs={"token": "round-trip"}, queue=settings.HEALTHZ_CELERY_QUEUE)

    assert result.get(timeout=10) == "round-trip"
