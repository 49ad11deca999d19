"""The work after calls for `/metrics` (core.metrics): recordings waiting for transcription, the
oldest one's wait, and those being transcribed and summarised (the wallboard's backlog)."""

from collections.abc import Iterable

from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from recordings.selectors import after_calls_backlog


def after_calls_metrics() -> Iterable[Metric]:
    backlog = after_calls_backlog(timezone.now())["after_calls"]
    stages = GaugeMetricFamily(
        "switchboard_recordings", "Recordings in the work after the call, by stage.", labels=["stage"]
    )
    for stage in ("queued", "transcribing", "summarising"):
        stages.add_metric([stage], backlog[stage])
    oldest = GaugeMetricFamily(
        "switchboard_recordings_oldest_queued_seconds", "How long the oldest recording queued has waited."
    )
    oldest.add_metric([], backlog["oldest_queued_s"])
    yield from (stages, oldest)
