from whatsapp.events import CallConnect, event_from_context
from whatsapp.models import WebhookEvent


def call_connect_event(*, wa_call_id: str) -> CallConnect | None:
    """Meta's `connect` event of a call as it was received (its SDP offer included), if stored."""
    stored = WebhookEvent.objects.filter(idempotency_key=f"call:{wa_call_id}:connect").first()
    if stored is None:
        return None
    event = event_from_context(stored.payload)
    return event if isinstance(event, CallConnect) else None
