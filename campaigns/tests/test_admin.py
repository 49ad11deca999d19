"""The back office: campaigns run with actions, recipients read-only."""

import pytest

from agents.tests.factories import supervisor
from campaigns.models import Campaign
from campaigns.services import campaign_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_a_supervisor_starts_and_pauses_campaigns_with_the_actions(client, number, template, opted_in):
    opted_in("447700900001")
    campaign = campaign_create(
        agents_on_duty=5, name="Spring", business_number=number, template=template, lines=["447700900001"]
    )
    client.force_login(supervisor())

    started = client.post(
        "/admin/campaigns/campaign/", {"action": "start", "_selected_action": [campaign.pk]}, follow=True
    )
    again = client.post(
        "/admin/campaigns/campaign/", {"action": "start", "_selected_action": [campaign.pk]}, follow=True
    )

    assert Campaign.objects.get().status == "sending"
    assert "1 campaign(s) started." in started.content.decode()
    assert "A campaign that is sending cannot be started." in again.content.decode()


def test_recipients_are_read_only_and_what_was_typed_is_masked_without_the_raw_permission(
    client, number, template
):
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["call me on jo@example.com"]
    )
    recipient = campaign.recipients.get()
    client.force_login(supervisor())

    listed = client.get("/admin/campaigns/recipient/").content.decode()
    change = client.post(f"/admin/campaigns/recipient/{recipient.pk}/change/", {"listed_as": "x"})

    assert "jo@example.com" not in listed
    assert "[email]" in listed
    assert change.status_code == 403
