"""The campaigns' API: create from numbers or a filter of contacts, list, detail with exclusions,
progress and cost, start / pause / resume / cancel; who may do what."""

import re

import pytest
from django.core.cache import caches

from agents.tests.factories import AgentFactory, supervisor
from campaigns.models import Campaign, OptIn
from campaigns.services import campaign_create
from integrations.api.base import NOT_ONLY_WHITESPACE
from integrations.models import ApiKey, ApiWrite
from integrations.services import api_key_create
from integrations.tests.conftest import bearer
from messaging.models import Message
from messaging.services import contact_get_or_create
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    caches["api"].clear()


@pytest.fixture
def key_of(number):
    def make(*scopes: str, numbers=None) -> dict:
        _, token = api_key_create(
            name="CRM", scopes=list(scopes), created_by_id=None,
            business_number_ids=[n.pk for n in numbers or [number]], rate_limit_per_minute=1000,
        )  # fmt: skip
        return bearer(token)

    return make


def body(number, **changes) -> dict:
    return {
        "name": "Spring", "business_number_id": number.pk,
        "template": {"name": "spring_offer", "language": "en"},
        "lines": ["+44 7700 900001", "not a number", "447700900001", "447700900004"], "parameters": ["you"],
        "send_rate_per_second": 20, "expected_tap_rate": 0.05,
    } | changes  # fmt: skip


def test_a_crm_creates_a_campaign_and_reads_what_was_left_out_and_why(
    client, number, template, opted_in, key_of
):
    opted_in("447700900001")
    headers = key_of(ApiKey.Scope.MESSAGES_WRITE, ApiKey.Scope.READ)

    response = client.post("/api/v1/campaigns/", body(number), content_type="application/json", **headers)

    data = response.json()
    campaign = Campaign.objects.get()
    assert response.status_code == 201, data
    assert (data["id"], data["status"], data["send_rate_per_second"], data["call_button_payload"]) == (
        campaign.pk, "draft", "20.000", f"campaign-{campaign.pk}",
    )  # fmt: skip
    assert data["exclusions"] == {
        "invalid_number": 1, "duplicate": 1, "sanctioned_country": 0, "marketing_stopped": 0, "no_opt_in": 1,
    }  # fmt: skip
    assert (data["progress"]["listed"], data["progress"]["pending"]) == (4, 1)
    assert data["cost"]["messages_amount"] == "0.0000"
    assert (data["plan"]["formula"][:8], data["plan"]["inputs"]["recipients"]) == ("Erlang C", 1)
    assert data["plan"]["lines"]  # the plan in words
    assert (data["estimate"]["messages"], data["estimate"]["countries"][0]["country"]) == (1, "GB")
    assert ApiWrite.objects.get().target == {"business_number": number.pk, "campaign": campaign.pk}


def test_a_campaign_of_a_filter_of_the_numbers_contacts(client, number, template, key_of):
    for wa_id, name in (("447700900001", "Ada Lovelace"), ("447700900002", "Alan Turing")):
        Message.objects.create(
            business_number=number, contact=contact_get_or_create(wa_id=wa_id, name=name),
            direction=Message.Direction.INBOUND, message_type="text", text="Hi",
            status=Message.Status.RECEIVED,
        )  # fmt: skip
    other = BusinessNumberFactory()
    Message.objects.create(
        business_number=other, contact=contact_get_or_create(wa_id="447700900003", name="Ada Other"),
        direction=Message.Direction.INBOUND, message_type="text", text="Hi", status=Message.Status.RECEIVED,
    )  # fmt: skip
    wanted = body(number, contact_filter={"q": "ada"})
    del wanted["lines"]

    response = client.post(
        "/api/v1/campaigns/",
        wanted,
        content_type="application/json",
        **key_of("admin", numbers=[number, other]),
    )

    assert response.status_code == 201, response.json()
    assert list(Campaign.objects.get().recipients.values_list("wa_id", "status")) == [
        ("447700900001", "pending")
    ]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"template": {"name": "unknown", "language": "en"}}, 422, "unknown_template"),
        ({"send_rate_per_second": 500}, 422, "send_rate"),
        ({"lines": []}, 422, "empty_list"),
        ({"contact_filter": {"q": ""}}, 422, "list"),  # lines and a filter
    ],
)
def test_a_campaign_that_cannot_be_is_refused_and_nothing_is_created(
    client, number, template, key_of, changes, status, code
):
    response = client.post(
        "/api/v1/campaigns/", body(number, **changes), content_type="application/json", **key_of("admin")
    )

    assert response.status_code == status, response.json()
    assert ApiWrite.objects.get().refusal_code == code
    assert Campaign.objects.count() == 0


def test_start_pause_resume_cancel_and_a_move_it_cannot_make(client, number, template, opted_in, key_of):
    opted_in("447700900001")
    campaign = campaign_create(
        agents_on_duty=5, name="Spring", business_number=number, template=template, lines=["447700900001"]
    )
    headers = key_of(ApiKey.Scope.MESSAGES_WRITE)
    url = f"/api/v1/campaigns/{campaign.pk}"

    answers = [
        (client.post(f"{url}/{action}/", **headers).status_code, Campaign.objects.get().status)
        for action in ("pause", "start", "pause", "resume", "cancel", "resume")
    ]

    assert answers == [
        (409, "draft"), (200, "sending"), (200, "paused"), (200, "sending"), (200, "cancelled"),
        (409, "cancelled"),
    ]  # fmt: skip
    assert ApiWrite.objects.filter(refusal_code="campaign_status").count() == 2


def test_the_list_takes_the_same_queries_however_many_campaigns(
    client, number, template, key_of, django_assert_max_num_queries
):
    headers = key_of(ApiKey.Scope.READ)
    for index in range(3):
        campaign_create(name=f"C{index}", business_number=number, template=template, lines=["447700900001"])
    client.get("/api/v1/campaigns/", **headers)  # the key's first use, cached
    with django_assert_max_num_queries(10) as few:
        client.get("/api/v1/campaigns/", **headers)
    for index in range(3, 13):
        campaign_create(name=f"C{index}", business_number=number, template=template, lines=["447700900001"])

    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/api/v1/campaigns/?status=draft", **headers)

    assert [row["name"] for row in response.json()["results"]][:2] == ["C12", "C11"]


def test_agents_do_not_run_campaigns_and_other_numbers_campaigns_are_not_there(
    client, number, template, key_of
):
    campaign = campaign_create(
        name="Spring", business_number=number, template=template, lines=["447700900001"]
    )
    other_key = key_of("admin", numbers=[BusinessNumberFactory()])
    client.force_login(AgentFactory().user)
    agent = client.get(f"/api/v1/campaigns/{campaign.pk}/").status_code
    client.force_login(supervisor())
    supervising = client.get(f"/api/v1/campaigns/{campaign.pk}/").status_code
    client.logout()

    elsewhere = client.get(f"/api/v1/campaigns/{campaign.pk}/", **other_key).status_code

    assert (agent, supervising, elsewhere) == (403, 200, 404)


def test_a_crm_records_opt_ins_and_the_next_campaign_reaches_those_customers(
    client, number, template, key_of
):
    headers = key_of(ApiKey.Scope.MESSAGES_WRITE)
    wanted = {"business_number_id": number.pk, "lines": ["+44 7700 900001", "07700 900002", "nope"],
              "detail": "Newsletter form, 2026-11"}  # fmt: skip

    response = client.post("/api/v1/opt-ins/", wanted, content_type="application/json", **headers)
    campaign = campaign_create(
        name="Spring", business_number=number, template=template,
        lines=["447700900001", "447700900002", "447700900003"],
    )  # fmt: skip

    assert (response.status_code, response.json()) == (201, {"recorded": 2, "invalid": ["nope"]})
    assert list(campaign.recipients.values_list("status", flat=True)) == ["pending", "pending", "excluded"]


def test_opt_ins_are_not_recorded_by_agents_nor_by_a_read_key(client, number, key_of):
    wanted = {"business_number_id": number.pk, "lines": ["447700900001"], "detail": "Form"}

    by_key = client.post(
        "/api/v1/opt-ins/", wanted, content_type="application/json", **key_of(ApiKey.Scope.READ)
    ).status_code
    client.force_login(AgentFactory().user)
    by_agent = client.post("/api/v1/opt-ins/", wanted, content_type="application/json").status_code

    assert (by_key, by_agent) == (403, 403)


def test_text_given_as_a_number_is_refused_not_turned_into_text(client, number, key_of):
    headers = key_of(ApiKey.Scope.MESSAGES_WRITE)
    body = {"business_number_id": number.pk, "lines": ["447700900001"], "detail": 0}

    response = client.post("/api/v1/opt-ins/", body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert "detail" in str(response.json())
    assert not OptIn.objects.exists()


def test_text_of_only_whitespace_is_refused_as_the_schema_says(client, number, key_of):
    headers = key_of(ApiKey.Scope.MESSAGES_WRITE)
    body = {"business_number_id": number.pk, "lines": ["447700900001"], "detail": " \t "}
    schema = client.get("/api/v1/schema/?format=json", **headers).json()

    response = client.post("/api/v1/opt-ins/", body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert response.json()["detail"] == ["This field may not be blank."]
    assert not OptIn.objects.exists()
    # The schema says so too: such text is not schema-valid (a client is not told to send it).
    created = schema["components"]["schemas"]["CreateRequest"]["properties"]
    assert (
        created["name"]["pattern"]
        == created["parameters"]["items"]["pattern"]
        == NOT_ONLY_WHITESPACE.regex.pattern
    )


@pytest.mark.parametrize("text", [chr(code) for code in range(0x110000) if chr(code).isspace()])
def test_the_schemas_whitespace_is_what_the_api_trims(text):
    # Whatever the field trims away fails the schema's pattern, and nothing else does: JavaScript's
    # `\S` would call "\x1d" text, which the field trims to blank (a schema-valid request refused).
    # No `\s` or `\S`: those classes differ between the schema's dialect and Python's.
    assert not re.search(r"\\[sS]", NOT_ONLY_WHITESPACE.regex.pattern)
    pattern = re.compile(NOT_ONLY_WHITESPACE.regex.pattern)
    assert not pattern.search(text * 3)
    assert pattern.search(f"{text}a{text}")


def test_text_the_api_does_not_trim_passes_the_schemas_pattern():
    pattern = re.compile(NOT_ONLY_WHITESPACE.regex.pattern)
    assert all(pattern.search(text) for text in ("\ufeff", "\u200b", "\x00", "\x7f", "\u180e"))
