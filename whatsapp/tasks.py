from celery import shared_task

from whatsapp.services import webhook_events_drain_queued, webhook_events_redispatch_stale


@shared_task(name="whatsapp.redispatch_stale_events")
def redispatch_stale_events() -> int:
    """Safety sweep: handle webhook events a stopped process stored but did not finish."""
    return webhook_events_redispatch_stale()


@shared_task(name="whatsapp.handle_queued_events")
def handle_queued_events() -> int:
    """Handle the webhook events the web process stored for the worker (statuses, messages...)."""
    return webhook_events_drain_queued()
