"""The CRM's writes: placing calls, asking permission to call, sending messages (with what they cost),
and reading charges and billing reports with a key; every write recorded with its answer."""

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from djmoney.money import Money

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, UserFactory
from calls.handlers import decision_frame
from calls.models import Call
from compliance.decisions import call_decide
from compliance.models import AuditEvent, CallPermission
from compliance.tests.factories import sent_requests
from integrations.models import ApiKey, ApiWrite
from integrations.tests.conftest import bearer
from messaging.models import Charge, Contact, ConversationWindow, Message, RateCard, Template
from messaging.services import rate_card_save, windows_customer_wrote
from whatsapp.tests.conftest import sandbox_serving

pytestmark = pytest.mark.django_db


@pytest.fixture
def ours(floor):
    """Our business, its agent free to take a call."""
    ours = floor[0]
    Agent.objects.filter(pk=ours.agent.pk).update(status=Agent.Status.AVAILABLE)
    return ours


@pytest.fixture
def meta(settings, ours):
    """The sandbox playing Meta for our number; our customer wrote to it a moment ago (the 24-hour
    window is open there and here)."""
    with sandbox_serving(settings, ours.number) as sandbox:
        customer = sandbox.thread.call(sandbox.add_customer, wa_id=ours.contact.wa_id, name="Ada")
        sandbox.thread.call(
            sandbox.meta.customer_send,
            customer,
            ours.number.phone_number_id,
            {"type": "text", "text": {"body": "Hi"}},
        )
        windows_customer_wrote(
            business_number_id=ours.number.pk, contact_ids=[ours.contact.pk], at=timezone.now()
        )
        yield sandbox


def post(client, path: str, body: dict, token: str, **headers):
    return client.post(path, body, content_type="application/json", **bearer(token), **headers)


def grant(business, **fields) -> CallPermission:
    return CallPermission.objects.create(
        business_number=business.number, contact=business.contact, status="permanent",
        granted_at=timezone.now(), **fields,
    )  # fmt: skip


def place(business, **changes) -> dict:
    return {"business_number_id": business.number.pk, "to": f"+{business.contact.wa_id}",
            "agent_id": business.agent.pk, **changes}  # fmt: skip


# --- Click-to-call --------------------------------------------------------------------------------


def test_a_call_is_placed_for_the_agent_who_will_talk(client, ours, make_key):
    permission = grant(ours)

    response = post(client, "/api/v1/calls/", place(ours, to="+44 7700 900101"), make_key("calls:write"))

    assert response.status_code == 201, response.content
    body = response.json()
    call = Call.objects.get(pk=body["id"])
    fields = ("direction", "status", "agent_id", "contact_id", "business_number_id")
    assert tuple(body[field] for field in fields) == (
        "outbound", "dialing", ours.agent.pk, ours.contact.pk, ours.number.pk,
    )  # fmt: skip
    assert response["Location"] == f"/api/v1/calls/{call.pk}/"
    assert Agent.objects.get(pk=ours.agent.pk).status == Agent.Status.ON_CALL
    permission.refresh_from_db()
    assert permission.owner_id == ours.agent.user_id  # who talks owns the customer's permission


def test_a_refused_call_answers_409_with_every_rule_and_the_fallback(client, ours, make_key):
    grant(ours, consecutive_unanswered=4, next_call_allowed_at=timezone.now() + timedelta(hours=2))

    response = post(client, "/api/v1/calls/", place(ours), make_key("calls:write"))

    body = response.json()
    frame = decision_frame(call_decide(business_number=ours.number, contact=ours.contact))
    assert response.status_code == 409
    assert [refusal["code"] for refusal in body["refusals"]] == ["unanswered_strikes", "connected_call_cap"]
    assert body == {
        "code": "call_refused",
        "detail": " ".join(refusal["reason"] for refusal in frame["refusals"]),
        **frame,
    }
    assert body["refusals"][1]["clears_at"] is not None
    assert body["fallback"]["kind"] == "call_button"
    assert Call.objects.filter(direction="outbound").count() == 0


def test_a_call_for_an_agent_on_another_call_is_409_busy(client, ours, make_key):
    grant(ours)
    Agent.objects.filter(pk=ours.agent.pk).update(status=Agent.Status.ON_CALL)

    response = post(client, "/api/v1/calls/", place(ours), make_key("calls:write"))

    assert (response.status_code, response.json()) == (409, {
        "code": "busy",
        "detail": "The agent is on_call: calls are placed for an agent who is available, away or wrap_up.",
    })  # fmt: skip
    assert Call.objects.filter(direction="outbound").count() == 0


def test_a_national_number_is_read_in_the_business_numbers_country(client, ours, make_key):
    response = post(client, "/api/v1/calls/", place(ours, to="07700 900303"), make_key("calls:write"))

    contact = Contact.objects.get(wa_id="447700900303")
    assert response.status_code == 409  # a customer we never asked: no permission
    assert response.json()["refusals"][0]["code"] == "no_permission"
    assert ApiWrite.objects.get().target["contact"] == contact.pk


@pytest.mark.parametrize(
    ("changes", "status", "answer"),
    [
        ({"agent_id": None}, 400, {"agent_id": ["This field may not be null."]}),
        ({"to": "not a number"}, 422, {"code": "invalid_customer", "field": "to"}),
        ({"to": "+44 12"}, 422, {"code": "invalid_customer", "field": "to"}),
        ({"agent_id": "their agent"}, 422, {"code": "invalid_agent", "field": "agent_id"}),
        ({"business_number_id": "their number"}, 404, {"detail": "No such business number."}),
    ],
)
def test_bad_call_requests_change_nothing(client, floor, ours, make_key, changes, status, answer):
    grant(ours)
    theirs = floor[1]
    changes = {
        name: {"their agent": theirs.agent.pk, "their number": theirs.number.pk}.get(value, value)
        for name, value in changes.items()
    }
    contacts = Contact.objects.count()

    response = post(client, "/api/v1/calls/", place(ours, **changes), make_key("calls:write"))

    body = response.json()
    assert response.status_code == status
    assert {name: body[name] for name in answer} == answer
    assert (Call.objects.filter(direction="outbound").count(), Contact.objects.count()) == (0, contacts)


def test_a_signed_in_agent_places_calls_as_themselves_only(client, ours):
    grant(ours)
    colleague = AgentFactory(status=Agent.Status.AVAILABLE)
    QueueMembership.objects.create(queue=ours.queue, agent=colleague)
    client.force_login(ours.agent.user)

    for_colleague = client.post(
        "/api/v1/calls/", place(ours, agent_id=colleague.pk), content_type="application/json"
    )
    for_themselves = client.post("/api/v1/calls/", place(ours), content_type="application/json")

    assert (for_colleague.status_code, for_themselves.status_code) == (403, 201)
    assert ApiWrite.objects.filter(user=ours.agent.user).count() == 2


# --- Permission requests --------------------------------------------------------------------------


def test_a_permission_request_is_sent_then_the_quota_refuses(client, ours, make_key, meta):
    token = make_key("calls:write")
    request = {
        "business_number_id": ours.number.pk,
        "to": f"+{ours.contact.wa_id}",
        "body_text": "About your order",
    }

    sent = post(client, "/api/v1/permission-requests/", request, token)
    again = post(client, "/api/v1/permission-requests/", request, token)

    event = AuditEvent.objects.get(kind=AuditEvent.Kind.REQUEST_SENT)
    message = Message.objects.get(message_type="interactive")
    assert sent.status_code == 201, sent.content
    assert sent.json() == {
        "audit_event_id": event.pk, "message_id": message.pk, "wa_message_id": message.wa_message_id,
        "business_number_id": ours.number.pk, "contact_id": ours.contact.pk, "permission": "requested",
        "sent_at": event.at.isoformat().replace("+00:00", "Z"),
    }  # fmt: skip
    assert (again.status_code, again.json()) == (409, {
        "code": "request_quota",
        "detail": "1 permission request(s) sent in the last 24 hours: the limit is 1.",
    })  # fmt: skip
    assert sent_requests(meta) == 1


def test_a_permission_request_to_a_customer_who_said_yes_is_409(client, ours, make_key):
    grant(ours)

    response = post(
        client, "/api/v1/permission-requests/",
        {"business_number_id": ours.number.pk, "to": f"+{ours.contact.wa_id}"}, make_key("calls:write"),
    )  # fmt: skip

    assert (response.status_code, response.json()) == (409, {
        "code": "granted", "detail": "The customer has already given permission to be called.",
    })  # fmt: skip


def test_a_permission_request_after_a_decline_waits_for_the_customer_to_write(client, ours, make_key, meta):
    token, declined_at = make_key("calls:write"), timezone.now() - timedelta(hours=2)
    permission = CallPermission.objects.create(
        business_number=ours.number, contact=ours.contact, status=CallPermission.Status.REJECTED,
        status_changed_at=declined_at,
    )  # fmt: skip
    AuditEvent.objects.create(permission=permission, kind=AuditEvent.Kind.REJECTED, at=declined_at)
    # The decline was the customer's last message.
    ConversationWindow.objects.filter(business_number=ours.number, contact=ours.contact).update(
        customer_service_until=declined_at + timedelta(hours=24)
    )
    request = {"business_number_id": ours.number.pk, "to": f"+{ours.contact.wa_id}"}

    refused = post(client, "/api/v1/permission-requests/", request, token)
    windows_customer_wrote(
        business_number_id=ours.number.pk, contact_ids=[ours.contact.pk], at=timezone.now()
    )
    sent = post(client, "/api/v1/permission-requests/", request, token)

    assert (refused.status_code, refused.json()["code"]) == (409, "declined")
    assert refused.json()["detail"].endswith(
        'has not written or called since. Send a "Call us" button instead.'
    )
    assert sent.status_code == 201, sent.content
    assert sent_requests(meta) == 1


def test_a_permission_request_whatsapp_does_not_take_is_502_and_changes_nothing(
    client, ours, make_key, settings
):
    settings.WHATSAPP_GRAPH_URL, settings.WHATSAPP_MAX_RETRIES = "http://127.0.0.1:9/v23.0", 0  # nobody there

    response = post(
        client, "/api/v1/permission-requests/",
        {"business_number_id": ours.number.pk, "to": f"+{ours.contact.wa_id}"}, make_key("calls:write"),
    )  # fmt: skip

    body = response.json()
    assert response.status_code == 502
    assert (body["code"], body["detail"], body["whatsapp_code"]) == (
        "whatsapp_error",
        "WhatsApp could not be reached or did not answer in time: try again in a few minutes.",
        None,
    )
    assert body["whatsapp_error"].startswith("[None] POST ")  # the transport's own words, for support
    assert (CallPermission.objects.count(), AuditEvent.objects.count()) == (0, 0)
    assert ApiWrite.objects.values_list("status_code", "refusal_code").get() == (502, "whatsapp_error")


# --- Messages -------------------------------------------------------------------------------------


def text(business, words: str = "We are on it") -> dict:
    return {"business_number_id": business.number.pk, "to": f"+{business.contact.wa_id}", "type": "text",
            "text": words}  # fmt: skip


def test_a_text_in_the_window_is_free_and_sent_once_per_idempotency_key(client, ours, make_key):
    windows_customer_wrote(
        business_number_id=ours.number.pk, contact_ids=[ours.contact.pk], at=timezone.now()
    )
    token, other_token = make_key("messages:write"), make_key("messages:write")
    outbound = Message.objects.filter(direction="outbound")

    first = post(client, "/api/v1/messages/", text(ours), token, HTTP_IDEMPOTENCY_KEY="order-1522")
    again = post(client, "/api/v1/messages/", {**text(ours), "idempotency_key": "order-1522"}, token)
    other_crm = post(client, "/api/v1/messages/", text(ours), other_token, HTTP_IDEMPOTENCY_KEY="order-1522")
    reused = post(
        client, "/api/v1/messages/", text(ours, "Other words"), token, HTTP_IDEMPOTENCY_KEY="order-1522"
    )

    body = first.json()
    assert (first.status_code, again.status_code, other_crm.status_code) == (201, 201, 201)
    assert again.json()["id"] == body["id"] != other_crm.json()["id"]
    assert (body["type"], body["text"], body["status"], body["direction"]) == (
        "text", "We are on it", "pending", "outbound",
    )  # fmt: skip
    assert body["window"]["is_service_window_open"] is True
    assert body["price"] == {
        "category": "service", "pricing_type": "free_customer_service", "billing": "free", "amount": "0.0000",
        "currency": "USD",
    }  # fmt: skip
    assert (reused.status_code, reused.json()["code"], reused.json()["field"]) == (
        422, "idempotency_key", "idempotency_key",
    )  # fmt: skip
    assert outbound.count() == 2


def test_a_retry_after_the_window_closed_gets_the_message_it_sent(client, ours, make_key):
    windows_customer_wrote(
        business_number_id=ours.number.pk,
        contact_ids=[ours.contact.pk],
        at=timezone.now() - timedelta(hours=23),
    )
    token = make_key("messages:write")
    first = post(client, "/api/v1/messages/", text(ours), token, HTTP_IDEMPOTENCY_KEY="order-7")
    ConversationWindow.objects.update(customer_service_until=timezone.now() - timedelta(seconds=1))  # 24 h on

    again = post(client, "/api/v1/messages/", text(ours), token, HTTP_IDEMPOTENCY_KEY="order-7")
    fresh = post(client, "/api/v1/messages/", text(ours), token, HTTP_IDEMPOTENCY_KEY="order-8")

    assert (first.status_code, again.status_code, again.json()["id"]) == (201, 201, first.json()["id"])
    assert (fresh.status_code, fresh.json()["code"]) == (409, "outside_service_window")


def test_a_text_outside_the_window_is_409_with_the_windows(client, ours, make_key):
    response = post(client, "/api/v1/messages/", text(ours), make_key("messages:write"))

    assert (response.status_code, response.json()) == (409, {
        "code": "outside_service_window",
        "detail": "The customer has not written or called in the last 24 hours: "
                  "only a template can be sent now.",
        "window": {"customer_service_until": None, "is_service_window_open": False, "free_entry_until": None,
                   "is_free_entry_open": False},
    })  # fmt: skip
    assert Message.objects.filter(direction="outbound").count() == 0
    assert ApiWrite.objects.values_list("operation", "status_code", "refusal_code").get() == (
        "messages.create", 409, "outside_service_window",
    )  # fmt: skip


def test_a_template_says_what_it_costs(client, ours, make_key):
    rate_card_save(
        rate=RateCard(
            category="marketing", market="GB", price=Money("0.0500", "USD"), effective_from=date(2025, 1, 1)
        )
    )
    for name, category in [("spring_sale", "marketing"), ("login_code", "authentication")]:
        Template.objects.create(waba_id=ours.number.waba_id, name=name, language="en", category=category,
                                status=Template.Status.APPROVED)  # fmt: skip
    token = make_key("messages:write")

    def send(name: str, **fields) -> dict:
        template = {"type": "template", "template": {"name": name, "language": "en"}, **fields}
        return post(client, "/api/v1/messages/", {**text(ours), **template}, token).json()

    sale = send("spring_sale", parameters=["20%"])
    code = send("login_code")

    assert sale["price"] == {
        "category": "marketing", "pricing_type": "regular", "billing": "charged", "amount": "0.0500",
        "currency": "USD",
    }  # fmt: skip
    assert code["price"] == {
        "category": "authentication", "pricing_type": "regular", "billing": "unpriced", "amount": None,
        "currency": "USD",
    }  # fmt: skip
    assert Message.objects.get(pk=sale["id"]).request["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "20%"}]}
    ]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        (
            {"type": "template", "template": {"name": "nothing_like_it", "language": "en"}},
            422,
            "unknown_template",
        ),
        (
            {"type": "template", "template": {"name": "draft", "language": "en"}},
            422,
            "template",
        ),  # not approved
        ({"type": "call_button", "idempotency_key": "k"}, 422, "idempotency_key"),
        ({"type": "template"}, 400, None),  # which template?
        ({"type": "fax"}, 400, None),
    ],
)
def test_bad_messages_are_refused_before_anything_is_recorded(client, ours, make_key, changes, status, code):
    Template.objects.create(waba_id=ours.number.waba_id, name="draft", language="en", category="utility")

    response = post(client, "/api/v1/messages/", {**text(ours), **changes}, make_key("messages:write"))

    assert (response.status_code, response.json().get("code")) == (status, code)
    assert Message.objects.filter(direction="outbound").count() == 0


def test_a_call_button_goes_out_through_whatsapp(client, ours, make_key, meta):
    response = post(
        client, "/api/v1/messages/", {**text(ours), "type": "call_button"}, make_key("messages:write")
    )

    body = response.json()
    assert response.status_code == 201, response.content
    assert (body["type"], body["status"], body["wa_message_id"]) == (
        "interactive",
        "sent",
        *meta.meta.messages,
    )
    assert body["price"]["billing"] == "free"


def test_a_message_whatsapp_cannot_deliver_is_502_saying_what_that_means(client, ours, make_key, meta):
    customer = meta.meta.customers[ours.contact.wa_id]
    meta.thread.call(setattr, customer, "is_on_whatsapp", False)

    response = post(
        client, "/api/v1/messages/", {**text(ours), "type": "call_button"}, make_key("messages:write")
    )

    assert (response.status_code, response.json()) == (502, {
        "code": "whatsapp_error",
        "detail": "This number cannot receive WhatsApp messages: it may not be on WhatsApp, or the "
        "customer's WhatsApp app may be too old to show this message.",
        "whatsapp_code": 131026,
        "whatsapp_error": "[131026] Message undeliverable (Message undeliverable)",
    })  # fmt: skip


def test_messages_are_listed_for_the_keys_numbers_newest_first_and_masked(client, floor, make_key):
    ours, theirs = floor
    reply = Message.objects.create(
        business_number=ours.number, contact=ours.contact, direction="outbound", message_type="text",
        text="Thanks, card ending 1111", status="sent",
    )  # fmt: skip

    listed = client.get("/api/v1/messages/?page_size=1", **bearer(make_key("read"))).json()
    rest = client.get(listed["next"], **bearer(make_key("read"))).json()
    raw = client.get(
        f"/api/v1/messages/?contact={ours.contact.pk}&direction=inbound", **bearer(make_key("admin"))
    )

    assert [message["id"] for message in listed["results"] + rest["results"]] == [reply.pk, ours.message.pk]
    assert rest["results"][0]["text"] == "My card is [card], thanks"
    assert [message["text"] for message in raw.json()["results"]] == [
        "My card is 4111 1111 1111 1111, thanks"
    ]
    assert theirs.message.pk not in {message["id"] for message in listed["results"] + rest["results"]}


# --- Charges and reports --------------------------------------------------------------------------


def charge(business, reference: str, **fields) -> Charge:
    defaults = {
        "kind": "message", "country": "GB", "category": "marketing", "pricing_type": "regular",
        "billed_on": date(2026, 3, 1), "amount": Money("0.0500", "USD"),
    }  # fmt: skip
    return Charge.objects.create(business_number=business.number, reference=reference, **(defaults | fields))


def test_charges_are_the_keys_numbers_only_and_filtered(client, floor, make_key):
    ours, theirs = floor
    message = charge(ours, ours.message.wa_message_id)
    call = charge(ours, ours.call.wa_call_id, kind="call", category="call", quantity=5, duration_seconds=30,
                  billed_on=date(2026, 3, 2), amount=None, amount_currency="USD")  # fmt: skip
    stranger = charge(ours, "wamid.someone-else")
    charge(theirs, theirs.message.wa_message_id)
    token = make_key(ApiKey.Scope.ADMIN)

    def ids(query: str = "") -> list[int]:
        return [
            row["id"] for row in client.get(f"/api/v1/charges/{query}", **bearer(token)).json()["results"]
        ]

    listed = client.get("/api/v1/charges/?kind=call", **bearer(token)).json()["results"]

    assert ids() == [stranger.pk, call.pk, message.pk]
    assert ids(f"?contact={ours.contact.pk}") == [call.pk, message.pk]
    assert ids("?since=2026-03-02&until=2026-03-02") == [call.pk]
    assert listed == [{
        "id": call.pk, "kind": "call", "reference": ours.call.wa_call_id,
        "business_number_id": ours.number.pk, "contact_id": ours.contact.pk, "country": "GB",
        "category": "call", "pricing_type": "regular",
        "billed_on": "2026-03-02", "quantity": 5, "duration_seconds": 30, "amount": None, "currency": "USD",
        "created_at": call.created_at.isoformat().replace("+00:00", "Z"),
    }]  # fmt: skip
    assert ids("?since=2026-03-02&until=2026-03-01") == []  # a period that ends before it starts
    assert client.get("/api/v1/charges/?since=yesterday", **bearer(token)).status_code == 400


def test_a_user_who_may_view_charges_lists_them(client, floor):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_charge"))
    client.force_login(user)
    charges = [charge(business, business.message.wa_message_id) for business in floor]

    listed = client.get("/api/v1/charges/").json()["results"]

    assert [row["id"] for row in listed] == [charges[1].pk, charges[0].pk]  # a supervisor: every number


def test_the_reports_answer_an_admin_key_with_its_numbers_only(client, floor, make_key):
    ours, theirs = floor
    charge(ours, "wamid.a")
    charge(theirs, "wamid.b", amount=Money("0.0700", "USD"))
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="view_charge"))
    period = {"since": "2026-03-01", "until": "2026-03-01"}

    for_key = client.get("/api/v1/reports/spend/", period, **bearer(make_key(ApiKey.Scope.ADMIN))).json()
    calls = client.get("/api/v1/reports/calls/", period, **bearer(make_key(ApiKey.Scope.ADMIN))).json()
    client.force_login(user)
    for_user = client.get("/api/v1/reports/spend/", period).json()

    assert [(total["charges"], total["amount"]) for total in for_key["totals"]] == [(1, "0.0500")]
    assert [(total["charges"], total["amount"]) for total in for_user["totals"]] == [
        (2, "0.1200")
    ]  # the account
    assert calls["rows"] == []


@pytest.mark.parametrize("path", ["/api/v1/messages/", "/api/v1/charges/"])
def test_a_list_costs_the_same_queries_however_long(client, floor, make_key, path):
    ours = floor[0]
    token = make_key(ApiKey.Scope.ADMIN)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path, **bearer(token)).status_code == 200
        return len(captured)

    queries()  # the key's first use is noted once
    short = queries()
    for number in range(5):
        message = Message.objects.create(
            business_number=ours.number, contact=ours.contact, direction="inbound", message_type="text",
            text="Hello", wa_message_id=f"wamid.more{number}", status="received",
        )  # fmt: skip
        charge(ours, message.wa_message_id)
    long = queries()

    assert short == long


# --- The record of writes -------------------------------------------------------------------------


def test_every_write_is_recorded_with_its_answer_refusals_too(client, ours, make_key):
    grant(ours)
    token = make_key("calls:write")
    key = ApiKey.objects.get()

    placed = post(client, "/api/v1/calls/", place(ours), token)
    again = post(client, "/api/v1/calls/", place(ours), token)  # the call just placed is live
    invalid = post(client, "/api/v1/calls/", place(ours, to="nobody"), token)
    no_scope = post(client, "/api/v1/messages/", text(ours), token)
    post(client, "/api/v1/calls/", place(ours), "sbk_unknown")  # nobody to record it for
    client.get("/api/v1/calls/", **bearer(make_key("read")))  # reads are not writes

    writes = list(ApiWrite.objects.order_by("pk"))
    assert [(write.operation, write.status_code, write.refusal_code) for write in writes] == [
        ("calls.create", 201, ""),
        ("calls.create", 409, "call_in_progress"),
        ("calls.create", 422, "invalid_customer"),
        ("messages.create", 403, "permission_denied"),
    ]
    call_id = placed.json()["id"]
    assert writes[0].target == {
        "business_number": ours.number.pk, "contact": ours.contact.pk, "agent": ours.agent.pk,
        "call": call_id,
    }  # fmt: skip
    assert [str(write.request_id) for write in writes] == [
        response["X-Request-Id"] for response in (placed, again, invalid, no_scope)
    ]
    assert {(write.key_id, write.user_id, write.method, write.path, write.client_ip) for write in writes} == {
        (key.pk, None, "POST", "/api/v1/calls/", "127.0.0.1"),
        (key.pk, None, "POST", "/api/v1/messages/", "127.0.0.1"),
    }


def test_the_record_of_writes_is_read_only_in_admin(client, ours, make_key):
    grant(ours)
    post(client, "/api/v1/calls/", place(ours), make_key("calls:write"))
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    write = ApiWrite.objects.get()

    listed = client.get("/admin/integrations/apiwrite/?operation=calls.create&status_code=201")
    added = client.get("/admin/integrations/apiwrite/add/")
    changed = client.post(f"/admin/integrations/apiwrite/{write.pk}/change/", {"status_code": 200})

    assert listed.status_code == 200 and b"calls.create" in listed.content
    assert added.status_code == 403
    assert changed.status_code == 403
    assert ApiWrite.objects.get().status_code == 201
