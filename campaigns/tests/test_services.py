"""Creating a campaign: each line screened with its reason; the list read from a CSV or a filter;
the campaign's states."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from calls.tests.factories import CallFactory
from campaigns.models import Campaign, Recipient
from campaigns.selectors import campaign_exclusions
from campaigns.services import (
    campaign_cancel,
    campaign_create,
    campaign_pause,
    campaign_resume,
    campaign_start,
    lines_from_csv,
)
from messaging.models import MarketingPreference, Message, Template
from messaging.preferences import marketing_preference_apply
from messaging.services import contact_get_or_create

pytestmark = pytest.mark.django_db


def test_each_line_is_screened_and_an_excluded_one_keeps_its_reason(number, template, opted_in):
    opted_in("447700900001", "989123456789", "447700900005")
    wrote = contact_get_or_create(wa_id="447700900002")
    Message.objects.create(
        business_number=number, contact=wrote, direction=Message.Direction.INBOUND, message_type="text",
        text="Hello", wa_message_id="wamid.in1", status=Message.Status.RECEIVED,
    )  # fmt: skip
    CallFactory(business_number=number, contact=contact_get_or_create(wa_id="447700900003"))
    marketing_preference_apply(
        business_number_id=number.pk, contact_id=contact_get_or_create(wa_id="447700900005").pk,
        is_stopped=True, at=timezone.now(), source=MarketingPreference.Source.WEBHOOK,
    )  # fmt: skip

    campaign = campaign_create(
        name="Spring", business_number=number, template=template,
        lines=["+44 7700 900001", "447700900002", "+44 7700 900003", "not a number", "+44 20 7946 0000",
               "+447700900001", "+98 912 345 6789", "447700900004", "447700900005", "  "],
    )  # fmt: skip

    screened = list(campaign.recipients.values_list("listed_as", "wa_id", "status", "exclusion"))
    assert screened == [
        ("+44 7700 900001", "447700900001", "pending", ""),  # opted in
        ("447700900002", "447700900002", "pending", ""),  # wrote to the number
        ("+44 7700 900003", "447700900003", "pending", ""),  # called it
        ("not a number", "", "excluded", "invalid_number"),
        ("+44 20 7946 0000", "", "excluded", "invalid_number"),  # a landline
        ("+447700900001", "447700900001", "excluded", "duplicate"),
        ("+98 912 345 6789", "989123456789", "excluded", "sanctioned_country"),
        ("447700900004", "447700900004", "excluded", "no_opt_in"),
        ("447700900005", "447700900005", "excluded", "marketing_stopped"),
    ]
    assert campaign.recipients.get(
        wa_id="447700900005", exclusion="marketing_stopped"
    ).exclusion_detail.startswith("Stopped marketing messages from this number on ")
    assert campaign_exclusions(campaign) == {
        "invalid_number": 2, "duplicate": 1, "sanctioned_country": 1, "marketing_stopped": 1, "no_opt_in": 1,
    }  # fmt: skip
    assert (campaign.status, campaign.call_button_payload) == ("draft", f"campaign-{campaign.pk}")


def test_a_utility_template_still_goes_to_those_who_stopped_marketing(number, opted_in):
    utility = Template.objects.create(
        waba_id=number.waba_id, name="delivery", language="en", category="utility", status="APPROVED"
    )
    opted_in("447700900005")
    marketing_preference_apply(
        business_number_id=number.pk, contact_id=contact_get_or_create(wa_id="447700900005").pk,
        is_stopped=True, at=timezone.now(), source=MarketingPreference.Source.WEBHOOK,
    )  # fmt: skip

    campaign = campaign_create(
        name="Deliveries", business_number=number, template=utility, lines=["447700900005"]
    )

    assert list(campaign.recipients.values_list("status", flat=True)) == ["pending"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"send_rate_per_second": Decimal("81")}, "send_rate"),
        ({"send_rate_per_second": Decimal("0")}, "send_rate"),
        ({"lines": ["", " "]}, "empty_list"),
        ({"name": " "}, "name"),
    ],
)
def test_a_campaign_that_cannot_be_is_refused_and_nothing_is_created(number, template, changes, code):
    wanted = {"name": "Spring", "business_number": number, "template": template, "lines": ["447700900001"]}

    with pytest.raises(ValidationError) as refusal:
        campaign_create(**(wanted | changes))

    assert refusal.value.code == code
    assert (Campaign.objects.count(), Recipient.objects.count()) == (0, 0)


def test_only_an_approved_template_of_the_numbers_account_is_sent(number, template):
    template.status = Template.Status.PAUSED
    template.save()

    with pytest.raises(ValidationError) as refusal:
        campaign_create(name="Spring", business_number=number, template=template, lines=["447700900001"])

    assert refusal.value.code == "template"


def test_a_csv_gives_its_phone_column_or_its_first_one():
    named = "name,Phone\nAda,+44 7700 900001\nBob,447700900002\n\n"
    bare = "+44 7700 900001;x\n447700900002\n".replace(";", ",")
    headed = "\ufeffnumber only\n07700 900003\n".encode()

    assert lines_from_csv(named) == ["+44 7700 900001", "447700900002"]
    assert lines_from_csv(bare) == ["+44 7700 900001", "447700900002"]
    assert lines_from_csv(headed) == ["07700 900003"]


def test_a_file_that_is_not_text_is_refused():
    with pytest.raises(ValidationError) as refusal:
        lines_from_csv(b"\xff\xfe\x00\x00binary")

    assert refusal.value.code == "csv"


def test_a_campaign_moves_through_its_states_and_refuses_a_move_it_cannot_make(
    number, template, opted_in, django_capture_on_commit_callbacks
):
    opted_in("447700900001")
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["447700900001"], agents_on_duty=5
    )

    with pytest.raises(ValidationError) as refusal:
        campaign_pause(campaign_id=campaign.pk)
    with django_capture_on_commit_callbacks() as queued:
        campaign_start(campaign_id=campaign.pk)
    campaign_pause(campaign_id=campaign.pk)
    campaign_resume(campaign_id=campaign.pk)
    campaign_cancel(campaign_id=campaign.pk)

    campaign.refresh_from_db()
    assert (refusal.value.code, refusal.value.messages) == (
        "campaign_status",
        ["A campaign that is draft cannot be paused."],
    )
    assert len(queued) == 2  # its sender, once started, and the news to its page
    assert campaign.status == "cancelled"
    assert (campaign.started_at is not None, campaign.paused_at, campaign.finished_at is not None) == (
        True,
        None,
        True,
    )
    with pytest.raises(ValidationError):
        campaign_resume(campaign_id=campaign.pk)


def test_campaigns_sending_from_one_number_at_once_share_its_throughput(number, template, opted_in):
    from campaigns.services import campaign_pace

    opted_in("447700900001")
    slow, fast, _draft = (
        campaign_create(
            name=name,
            business_number=number,
            template=template,
            lines=["447700900001"],
            send_rate_per_second=rate,
        )
        for name, rate in (("Slow", Decimal("10")), ("Fast", None), ("Draft", None))
    )
    Campaign.objects.filter(pk__in=[slow.pk, fast.pk]).update(status=Campaign.Status.SENDING)

    assert (campaign_pace(slow), campaign_pace(fast)) == (10.0, 40.0)  # 80 a second between the two


def test_a_campaign_starts_at_its_plans_pace_or_not_at_all_with_nobody_to_answer(number, template, opted_in):
    """The plan sets the pace (campaigns.planning); with no agent on duty no pace keeps the queue's
    service level, so the campaign is not started unless the operator gives the pace."""
    opted_in("447700900001")
    staffed = campaign_create(
        name="Staffed", business_number=number, template=template, lines=["447700900001"], agents_on_duty=5
    )
    unstaffed = campaign_create(
        name="Nobody on", business_number=number, template=template, lines=["447700900001"], agents_on_duty=0
    )

    campaign_start(campaign_id=staffed.pk)
    with pytest.raises(ValidationError) as refusal:
        campaign_start(campaign_id=unstaffed.pk)
    unstaffed.refresh_from_db()
    refused_status = unstaffed.status
    campaign_start(campaign_id=unstaffed.pk, send_rate=Decimal("2.5"))

    staffed.refresh_from_db()
    unstaffed.refresh_from_db()
    assert (staffed.status, staffed.plan["rate_source"], staffed.plan["is_feasible"]) == (
        "sending",
        "plan",
        True,
    )
    assert staffed.send_rate_per_second == Decimal(f"{staffed.plan['recommended_send_rate']:.3f}")
    assert refusal.value.code == "plan"
    assert "put agents on duty first" in refusal.value.messages[0]
    assert refused_status == "draft"
    assert (unstaffed.status, unstaffed.send_rate_per_second, unstaffed.plan["rate_source"]) == (
        "sending",
        Decimal("2.5"),
        "operator",
    )


def test_a_pace_over_the_numbers_throughput_is_refused_at_the_start(number, template, opted_in):
    opted_in("447700900001")
    campaign = campaign_create(
        name="Fast", business_number=number, template=template, lines=["447700900001"], agents_on_duty=5
    )

    with pytest.raises(ValidationError) as refusal:
        campaign_start(campaign_id=campaign.pk, send_rate=Decimal("81"))

    assert refusal.value.code == "send_rate"
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
