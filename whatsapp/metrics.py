"""The webhook's figures for `/metrics` (core.metrics): Meta's events stored and waiting for the
worker, the oldest one's wait, and events whose handling failed. How long the answers took is
counted where they are given (whatsapp.asgi: `switchboard_webhook_ack_seconds`)."""

from collections.abc import Iterable

from django.db.models import Count, Min, Q
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from whatsapp.models import WebhookEvent


def webhook_metrics() -> Iterable[Metric]:
    waiting = WebhookEvent.objects.filter(
        status__in=[WebhookEvent.Status.QUEUED, WebhookEvent.Status.PROCESSING, WebhookEvent.Status.FAILED]
    ).aggregate(
        queued=Count("pk", filter=Q(status=WebhookEvent.Status.QUEUED)),
        processing=Count("pk", filter=Q(status=WebhookEvent.Status.PROCESSING)),
        failed=Count("pk", filter=Q(status=WebhookEvent.Status.FAILED)),
        oldest=Min("received_at", filter=Q(status=WebhookEvent.Status.QUEUED)),
    )
    backlog = GaugeMetricFamily(
        "switchboard_webhook_events",
        "Meta's events stored and not handled yet: queued for the worker, being handled, failed.",
        labels=["state"],
    )
    for state in ("queued", "processing", "failed"):
        backlog.add_metric([state], waiting[state])
    oldest = GaugeMetricFamily(
        "switchboard_webhook_oldest_queued_seconds",
        "How long the oldest event queued for the worker has waited.",
    )
    oldest.add_metric([], (timezone.now() - waiting["oldest"]).total_seconds() if waiting["oldest"] else 0.0)
    yield from (backlog, oldest)
