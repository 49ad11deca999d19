"""The calls app's figures for `/metrics` (core.metrics): what the wallboard shows (queues' waits,
agents by state), the calls not ended by state, and each media process's calls and CPU from its heartbeat."""

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from calls.models import Call
from calls.selectors import media_heartbeats, wallboard_snapshot


def calls_metrics() -> Iterable[Metric]:
    snapshot = wallboard_snapshot()
    waiting = GaugeMetricFamily(
        "switchboard_queue_calls_waiting", "Calls waiting for an agent, by queue.", labels=["queue"]
    )
    oldest = GaugeMetricFamily(
        "switchboard_queue_longest_wait_seconds",
        "How long the longest-waiting call of the queue (queued or ringing) has waited.",
        labels=["queue"],
    )
    for queue in snapshot["queues"]:
        waiting.add_metric([queue["name"]], queue["waiting"])
        oldest.add_metric([queue["name"]], queue["longest_wait_s"])
    agents = GaugeMetricFamily("switchboard_agents", "Agents by state.", labels=["state"])
    for row in snapshot["agents"]:
        agents.add_metric([row["status"]], row["count"])
    live = Call.objects.filter(status__in=Call.LIVE_STATUSES)  # not the whole history at each scrape
    by_status = dict(live.values_list("status").annotate(count=Count("pk")).values_list("status", "count"))
    calls = GaugeMetricFamily("switchboard_calls_live", "Calls not ended, by state.", labels=["state"])
    for status in sorted(Call.LIVE_STATUSES):
        calls.add_metric([status], by_status.get(status, 0))
    yield from (waiting, oldest, agents, calls, *media_metrics())


def media_metrics() -> Iterable[Metric]:
    """Each live media process's calls held and CPU seconds used (their heartbeats)."""
    heartbeats = media_heartbeats()
    processes = GaugeMetricFamily("switchboard_media_processes", "Media processes whose heartbeat is fresh.")
    processes.add_metric([], len(heartbeats))
    held = GaugeMetricFamily("switchboard_media_calls", "Calls a media process holds.", labels=["process"])
    cpu = CounterMetricFamily(
        "switchboard_media_cpu_seconds", "CPU seconds a media process has used.", labels=["process"]
    )
    for process, reported in heartbeats.items():
        if "calls" in reported:
            held.add_metric([process], reported["calls"])
            cpu.add_metric([process], reported.get("cpu_s", 0.0))
    yield from (processes, held, cpu)
