from celery import shared_task

from integrations.webhooks import deliveries_due, delivery_attempt


@shared_task(name="integrations.deliver_event")
def deliver_event(*, delivery_id: int) -> str:
    """POST one event to one subscription; retried with backoff by the delivery itself. Idempotent."""
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="integrations.deliver_due")
def deliver_due() -> int:
    """Safety sweep: deliveries whose retry was lost with the broker or a worker are sent now."""
    due = deliveries_due()
    for delivery_id in due:
        deliver_event.delay(delivery_id=delivery_id)
    return len(due)
