"""The campaigns' sender: a task per sending campaign, carrying on where it stopped; a beat sweep
starts one again for a sending campaign whose sender died (a restart, a lost task)."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from campaigns.models import Campaign
from campaigns.services import campaign_outcomes_link, campaign_replan, campaign_send
from core.jobs import enqueue_on_commit
from whatsapp.client import GraphClient

SENDER_BUDGET_S = 50.0  # a task sends this long, then hands over to the next (workers stay responsive)


@shared_task(name="campaigns.send", acks_late=True)
def send_campaign(*, campaign_id: int) -> str:
    """Send a sending campaign for a while (campaigns.services.campaign_send), then queue the next
    stint if there is more; nothing when it is gone, not sending, or has a live sender. Idempotent: a
    recipient is claimed before it is sent and its message recorded under its own key."""
    if not Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).exists():
        return "not sending"
    campaign_replan(campaign_id=campaign_id)  # the campaign's own rates, once measured, set its pace
    with GraphClient() as graph:
        after = campaign_send(campaign_id=campaign_id, graph=graph, budget_seconds=SENDER_BUDGET_S)
    if after is None:
        return "done"
    enqueue_on_commit(send_campaign, countdown=after or None, campaign_id=campaign_id)
    return f"again in {after:.1f} s"


@shared_task(name="campaigns.resume_senders")
def resume_senders() -> int:
    """Safety sweep: start a sender for each sending campaign with none alive (its sender died, its
    task was lost with the broker, the workers restarted): how many."""
    now = timezone.now()
    orphans = list(
        Campaign.objects.filter(status=Campaign.Status.SENDING)
        .exclude(sender_until__gt=now)
        .values_list("pk", flat=True)
    )
    for campaign_id in orphans:
        send_campaign.delay(campaign_id=campaign_id)
    return len(orphans)


OUTCOMES_FOR = timedelta(days=7)  # replies and calls a campaign brings come in the days after it


@shared_task(name="campaigns.link_outcomes")
def link_outcomes() -> int:
    """Note replies and calls on the recipients of campaigns sent in the last week
    (campaigns.services.campaign_outcomes_link): how many recipients gained one."""
    since = timezone.now() - OUTCOMES_FOR
    campaign_ids = Campaign.objects.filter(started_at__gte=since).values_list("pk", flat=True)
    return sum(campaign_outcomes_link(campaign_id=campaign_id) for campaign_id in campaign_ids)
