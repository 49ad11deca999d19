"""What an operator watches, in Prometheus's text format (`/metrics`, behind METRICS_TOKEN).

Whichever `web` process a scrape reaches answers for the whole deployment:

- **the state of the floor** is read at scrape time from where it lives (the database, Redis), by
  the sources each app registers (`metrics_source_register`): calls by state, queues' waits,
  agents by state, Meta's events waiting for the worker, the work after calls, media processes;
- **what happens in a process** (a webhook answered, a Graph API error) is counted in that process
  and added to shared totals in Redis at most once a second, by a thread of the process's own
  (`SharedCounter`, `SharedHistogram`), so that neither an event loop nor a request waits on it.
  A process that dies loses at most its last second of counts.
"""

import bisect
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis
from django.conf import settings
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

logger = logging.getLogger(__name__)

FLUSH_EVERY_S = 1.0

MetricsSource = Callable[[], Iterable[Metric]]
_sources: list[MetricsSource] = []


def metrics_source_register(source: MetricsSource) -> None:
    """An app's figures for the scrape (from its apps' `ready`): a function yielding metric
    families, read at each scrape."""
    if source not in _sources:
        _sources.append(source)


class _Collector:
    def collect(self) -> Iterable[Metric]:
        for source in _sources:
            yield from source()
        for shared in _shared:
            yield shared.family()


def metrics_text() -> bytes:
    """Every registered source's figures and the shared totals, in Prometheus's text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry)


def _key(name: str) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:metrics:{name}"


class _Shared:
    """A figure that every process adds to and any process reads: what a process records is kept
    in it, and added to a Redis hash by the process's flushing thread."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation = name, documentation
        self._lock = threading.Lock()
        self._pending: Counter = Counter()
        self._flusher_pid: int | None = None
        _shared.append(self)

    def _add(self, fields: dict[str, float]) -> None:
        with self._lock:
            self._pending.update(fields)
            if self._flusher_pid != os.getpid():  # the first record here, or in a forked child
                self._flusher_pid = os.getpid()
                threading.Thread(target=self._flush_forever, name=f"metrics-{self.name}", daemon=True).start()

    def _flush_forever(self) -> None:
        client = redis.Redis.from_url(settings.REDIS_URL)
        while True:
            time.sleep(FLUSH_EVERY_S)
            try:
                self.flush(client)
            except Exception:  # the thread must outlive any one failure, or the counts stop for good
                logger.exception("metrics: %s not flushed", self.name)

    def flush(self, client: redis.Redis | None = None) -> None:
        """Add what this process recorded since the last flush to the shared totals."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        client = client or redis.Redis.from_url(settings.REDIS_URL)
        try:
            pipe = client.pipeline(transaction=True)  # all of it or none: a retry never counts twice
            for field, amount in pending.items():
                if isinstance(amount, float):
                    pipe.hincrbyfloat(_key(self.name), field, amount)
                else:
                    pipe.hincrby(_key(self.name), field, amount)
            pipe.execute()
        except redis.RedisError:
            logger.warning("metrics: %s could not be added to Redis; kept for the next flush", self.name)
            with self._lock:
                self._pending.update(pending)

    def _read(self) -> dict[str, float]:
        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            return {field.decode(): float(value) for field, value in client.hgetall(_key(self.name)).items()}
        finally:
            client.close()

    def family(self) -> Metric:
        raise NotImplementedError


_shared: list[_Shared] = []


class SharedCounter(_Shared):
    """A counter with one label, e.g. Graph API errors by code."""

    def __init__(self, name: str, documentation: str, *, label: str) -> None:
        super().__init__(name, documentation)
        self.label = label

    def inc(self, label_value: str, amount: int = 1) -> None:
        self._add({label_value: amount})

    def family(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for label_value, count in sorted(self._read().items()):
            family.add_metric([label_value], count)
        return family


class SharedHistogram(_Shared):
    """A histogram of seconds, e.g. how long Meta's deliveries waited for their answer."""

    def __init__(self, name: str, documentation: str, *, buckets: tuple[float, ...]) -> None:
        super().__init__(name, documentation)
        self.buckets = buckets

    def observe(self, seconds: float) -> None:
        # The first bucket holding it (the last is +Inf): cumulative counts are made when read.
        index = bisect.bisect_left(self.buckets, seconds)
        bucket = repr(self.buckets[index]) if index < len(self.buckets) else "+Inf"
        self._add({bucket: 1, "sum": float(seconds)})

    def family(self) -> Metric:
        counts = self._read()
        buckets, total = [], 0.0
        for bound in [*map(repr, self.buckets), "+Inf"]:
            total += counts.get(bound, 0.0)
            buckets.append((bound, total))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, sum_value=counts.get("sum", 0.0))
        return family


# Recorded where they happen (whatsapp.asgi, whatsapp.client), read by every scrape.
WEBHOOK_ACK_SECONDS = SharedHistogram(
    "switchboard_webhook_ack_seconds",
    "Time from a delivery's arrival to its answer, in the web processes (Meta wants a median under "
    "250 ms and under 1 % over 1 s).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
GRAPH_API_ERRORS = SharedCounter(
    "switchboard_graph_api_errors",
    "Errors Meta's Graph API answered, by Meta's error code ('transport': no answer after retries).",
    label="code",
)
