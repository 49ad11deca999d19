from celery import shared_task

from whatsapp.services import webhook_events_drain_queued, webhook_events_redispatch_stale


@shared_task(name="whatsapp.redispatch_stale_events")
def redispatch_stale_events() -> int:
    """Safety sweep: handle webhook events a stopped process stored but did not finish."""
    return webhook_events_redispatch_stale()


@shared_task(name="whatsapp.handle_queued_events")
def handle_queued_events(*, is_at_once: bool = False) -> int:
    """Handle the webhook events the web process stored for the worker (statuses, messages...);
    `is_at_once`: started at once for a customer's message, not after the statuses' gathering."""
    return webhook_events_drain_queued(is_at_once=is_at_once)
