"""The campaign pages a supervisor uses: build one from a list, see it screened, costed and planned,
start it and follow it."""

from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile

from agents.tests.factories import supervisor
from campaigns.models import Campaign, OptIn, Recipient
from campaigns.services import campaign_create

GUESSES = {
    "tap_rate_percent": "2", "call_seconds": "180", "tap_delay_seconds": "600", "service_level_percent": "80",
    "answer_seconds": "20", "agents_on_duty": "4",
}  # fmt: skip


def form(number, template, **fields) -> dict:
    return {"name": "Spring", "business_number": number.pk, "template": template.pk, **GUESSES, **fields}


def test_a_list_with_its_opt_in_becomes_a_screened_draft_with_its_cost_and_plan(client, number, template):
    client.force_login(supervisor())
    numbers = "+44 7700 900001\n447700900002\nnot a number\n+44 7700 900001\n"

    response = client.post(
        "/campaigns/new/",
        form(number, template, numbers=numbers, opted_in="on", opt_in_detail="Spring fair sign-up sheet"),
    )

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == f"/campaigns/{campaign.pk}/"
    assert (campaign.status, campaign.agents_on_duty, campaign.expected_tap_rate) == (
        "draft",
        4,
        Decimal("0.02"),
    )
    assert sorted(OptIn.objects.values_list("contact__wa_id", "detail", "source")) == [
        ("447700900001", "Spring fair sign-up sheet", "import"),
        ("447700900002", "Spring fair sign-up sheet", "import"),
    ]
    page = client.get(response.url).content.decode()
    assert "Left out: 2 of 4" in page
    assert "Not a valid phone number" in page and "Listed more than once" in page
    assert 'id="estimate"' in page and "What it will cost" in page
    assert 'id="plan" data-feasible="true"' in page and "Erlang C" in page
    assert 'name="send_rate"' in page


def test_a_csv_upload_is_read_and_customers_without_an_opt_in_are_left_out(
    client, number, template, opted_in
):
    opted_in("447700900001")
    client.force_login(supervisor())
    upload = SimpleUploadedFile("list.csv", b"name,phone\nAna,+447700900001\nBen,+447700900002\n", "text/csv")

    client.post("/campaigns/new/", form(number, template, csv_file=upload))

    recipients = Recipient.objects.order_by("wa_id").values_list("wa_id", "status", "exclusion")
    assert list(recipients) == [("447700900001", "pending", ""), ("447700900002", "excluded", "no_opt_in")]


def test_no_list_or_an_opt_in_without_where_is_refused_and_nothing_is_made(client, number, template):
    client.force_login(supervisor())

    no_list = client.post("/campaigns/new/", form(number, template))
    no_where = client.post("/campaigns/new/", form(number, template, numbers="447700900001", opted_in="on"))

    assert (no_list.status_code, no_where.status_code) == (400, 400)
    assert "Give the list" in no_list.content.decode()
    assert "Say where the customers agreed" in no_where.content.decode()
    assert (Campaign.objects.count(), OptIn.objects.count()) == (0, 0)


def test_a_campaign_starts_at_the_pace_given_and_is_paused_resumed_and_cancelled_from_its_page(
    client, number, template, opted_in, django_capture_on_commit_callbacks
):
    opted_in("447700900001")
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["447700900001"]
    )
    client.force_login(supervisor())
    url = f"/campaigns/{campaign.pk}"

    refused = client.post(f"{url}/start/", {"send_rate": ""}, follow=True)  # nobody on duty: no plan
    with django_capture_on_commit_callbacks():
        started = client.post(f"{url}/start/", {"send_rate": "1.5"}, follow=True)
    statuses = [Campaign.objects.get().status]
    for action in ("pause", "resume", "cancel"):
        client.post(f"{url}/{action}/")
        statuses.append(Campaign.objects.get().status)
    unknown = client.post(f"{url}/explode/", follow=True)

    assert "put agents on duty first" in refused.content.decode()
    assert "Campaign started." in started.content.decode()
    assert statuses == ["sending", "paused", "sending", "cancelled"]
    assert Campaign.objects.get().send_rate_per_second == Decimal("1.5")
    assert "is not something a campaign does" in unknown.content.decode()


def test_the_progress_part_shows_the_campaigns_figures(client, number, template, opted_in):
    opted_in("447700900001", "447700900002")
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["447700900001", "447700900002", "x"]
    )
    client.force_login(supervisor())

    part = client.get(f"/campaigns/{campaign.pk}/progress/").content.decode()

    assert '<td data-figure="listed">3</td>' in part
    assert '<td data-figure="excluded">1</td>' in part
    assert '<td data-figure="pending">2</td>' in part
    assert 'data-status="draft"' in part


def test_the_lines_left_out_are_masked_for_a_supervisor_who_may_not_read_free_text(client, number, template):
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["call me at ana@example.com"]
    )

    client.force_login(supervisor(sees_raw_text=False))
    masked = client.get(f"/campaigns/{campaign.pk}/").content.decode()
    client.force_login(supervisor(sees_raw_text=True))
    raw = client.get(f"/campaigns/{campaign.pk}/").content.decode()

    assert "ana@example.com" not in masked
    assert "ana@example.com" in raw
