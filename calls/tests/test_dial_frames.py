"""Click-to-call from the agent's dashboard: the frames, their refusals and the fallback."""

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from agents.models import Agent, QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from agents.tests.test_consumers import open_socket
from calls.handlers import check_frame, dial_frame, hang_up_frame
from calls.models import Call
from calls.outbound import call_outbound_dialed
from compliance.models import CallPermission
from compliance.tests.factories import CUSTOMER
from integrations.api.base import customer_wa_id
from messaging.models import Contact
from whatsapp.models import BusinessNumber
from whatsapp.tests.factories import BusinessNumberFactory

Status = Agent.Status


def agent_with_number(*, status: str = Status.AVAILABLE) -> tuple[Agent, int]:
    number = BusinessNumberFactory(display_phone_number="+44 20 7946 0000")
    queue = QueueFactory()
    queue.business_numbers.add(number)
    agent = AgentFactory(status=status)
    QueueMembership.objects.create(queue=queue, agent=agent)
    return agent, number.pk


def grant(number_id: int, wa_id: str = CUSTOMER) -> None:
    contact, _ = Contact.objects.get_or_create(wa_id=wa_id)
    CallPermission.objects.create(business_number_id=number_id, contact=contact, status="permanent",
                                  granted_at=timezone.now())  # fmt: skip


@pytest.mark.django_db
def test_refused_dial_lists_the_reasons_and_offers_a_permission_request():
    agent, number_id = agent_with_number()

    result = dial_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": "+44 7700 900123"}
    )

    assert (result["is_placed"], result["customer"], result["customer_number"]) == (
        False, "+447700900123", "+447700900123",
    )  # fmt: skip
    assert [refusal["code"] for refusal in result["refusals"]] == ["no_permission"]
    assert result["fallback"]["kind"] == "permission_request"
    assert Call.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"business_number_id": 10**9, "customer": CUSTOMER}, "invalid_number"),
        ({"business_number_id": "1", "customer": CUSTOMER}, "invalid_number"),
        ({"customer": "not a number"}, "invalid_customer"),
        ({"customer": 447700900123}, "invalid_customer"),
        ({"customer": "+44 12"}, "invalid_customer"),
    ],
)
def test_bad_dial_frames_are_refused_and_change_nothing(frame, code):
    agent, number_id = agent_with_number()
    frame = {"business_number_id": number_id, **frame}

    result = dial_frame(agent_id=agent.pk, frame=frame)

    assert (result["type"], result["is_placed"], result["error"]["code"]) == ("call.dial.result", False, code)
    assert (Call.objects.count(), Contact.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_a_number_outside_the_agents_queues_cannot_be_called_from():
    agent, _ = agent_with_number()
    other = BusinessNumberFactory()

    result = dial_frame(agent_id=agent.pk, frame={"business_number_id": other.pk, "customer": CUSTOMER})

    assert result["error"] == {
        "code": "invalid_number",
        "message": "Choose one of your queues' business numbers.",
    }


@pytest.mark.django_db
def test_a_refused_dial_makes_no_contact():
    agent, number_id = agent_with_number()

    result = dial_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": "+44 7400 123000"}
    )

    assert (result["is_placed"], result["customer"], result["refusals"][0]["code"]) == (
        False, "+447400123000", "no_permission",
    )  # fmt: skip
    assert (Contact.objects.count(), CallPermission.objects.count(), Call.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["07400 123000", " 07400123000 ", "+44 7400 123000", "447400123000"])
def test_the_dialer_reads_numbers_as_the_api_does(typed):
    agent, number_id = agent_with_number()  # a UK business number: national numbers are British
    frame = {"business_number_id": number_id, "customer": typed}

    checked = check_frame(agent_id=agent.pk, frame=frame)
    dialed = dial_frame(agent_id=agent.pk, frame=frame)

    assert (checked["customer_number"], dialed["customer_number"]) == ("+447400123000", "+447400123000")
    assert customer_wa_id(typed, number=BusinessNumber.objects.get(pk=number_id)) == "447400123000"


@pytest.mark.django_db
def test_a_national_number_reaches_the_customer_who_granted_permission():
    agent, number_id = agent_with_number()
    grant(number_id)  # +44 7700 900123

    placed = dial_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": "07700 900123"}
    )

    assert (placed["is_placed"], Call.objects.get().contact.wa_id) == (True, CUSTOMER)


@pytest.mark.django_db
def test_placed_call_puts_the_agent_on_it_and_a_second_is_refused():
    agent, number_id = agent_with_number(status=Status.WRAP_UP)
    grant(number_id)
    grant(number_id, "447700900124")

    placed = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": CUSTOMER})
    busy = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": "+447700900124"})

    agent.refresh_from_db()
    assert placed["is_placed"] and Call.objects.get().pk == placed["call_id"]
    assert (agent.status, busy["is_placed"], busy["error"]["code"], Call.objects.count()) == (
        Status.ON_CALL, False, "busy", 1,
    )  # fmt: skip


@pytest.mark.django_db
def test_hanging_up_before_the_customer_answers_is_an_unanswered_call():
    agent, number_id = agent_with_number()
    grant(number_id)
    placed = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": CUSTOMER})
    call_outbound_dialed(call_id=placed["call_id"], wa_call_id="wacid.ringing")  # Meta placed it

    result = hang_up_frame(agent_id=agent.pk, frame={"call_id": placed["call_id"]})

    call = Call.objects.get()
    agent.refresh_from_db()
    assert result["is_done"]
    assert (call.status, call.end_reason, agent.status) == ("ended", "unanswered", Status.WRAP_UP)
    assert CallPermission.objects.get(contact__wa_id=CUSTOMER).consecutive_unanswered == 1


@pytest.mark.django_db(transaction=True)
async def test_dial_frame_over_the_socket():
    agent, number_id = await sync_to_async(agent_with_number)()
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence on connect

    await communicator.send_json_to(
        {"type": "call.dial", "business_number_id": number_id, "customer": CUSTOMER}
    )
    reply = await communicator.receive_json_from(timeout=5)

    assert (reply["type"], reply["is_placed"], reply["fallback"]["kind"]) == (
        "call.dial.result", False, "permission_request",
    )  # fmt: skip
    await communicator.disconnect()


@pytest.mark.django_db
def test_giving_up_a_call_meta_has_not_named_yet_is_no_strike():
    agent, number_id = agent_with_number()
    grant(number_id)
    placed = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": CUSTOMER})

    hang_up_frame(agent_id=agent.pk, frame={"call_id": placed["call_id"]})

    assert Call.objects.values_list("status", "end_reason").get() == ("ended", "failed")
    assert CallPermission.objects.get(contact__wa_id=CUSTOMER).consecutive_unanswered == 0


@pytest.mark.django_db
def test_a_reloaded_dashboard_shows_the_call_still_dialling():
    from calls.selectors import resume_frames_for_agent

    agent, number_id = agent_with_number()
    grant(number_id)
    placed = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": CUSTOMER})

    frames = resume_frames_for_agent(agent_id=agent.pk)

    assert [(frame["type"], frame["call_id"], frame["is_placed"]) for frame in frames] == [
        ("call.dial.result", placed["call_id"], True)
    ]


@pytest.mark.django_db
def test_the_fallback_frame_takes_the_number_the_refusal_gave_for_a_named_customer():
    from calls.handlers import fallback_frame

    agent, number_id = agent_with_number()
    Contact.objects.create(wa_id=CUSTOMER, name="Noor Aziz")
    refused = dial_frame(agent_id=agent.pk, frame={"business_number_id": number_id, "customer": CUSTOMER})

    wrong_kind = fallback_frame(
        agent_id=agent.pk,
        frame={"business_number_id": number_id, "customer": refused["customer_number"], "kind": "fax"},
    )

    assert refused["customer"] == "Noor Aziz (+447700900123)"
    assert wrong_kind["error"]["code"] == "invalid_fallback"  # the customer's number was understood


@pytest.mark.django_db
def test_a_check_says_why_a_customer_cannot_be_called_and_changes_nothing():
    agent, number_id = agent_with_number()

    result = check_frame(
        agent_id=agent.pk,
        frame={"check_id": 3, "business_number_id": number_id, "customer": "+44 7700 900123"},
    )

    assert (result["type"], result["check_id"], result["is_allowed"]) == ("call.check.result", 3, False)
    assert result["customer_number"] == "+447700900123"
    assert [refusal["code"] for refusal in result["refusals"]] == ["no_permission"]
    assert result["fallback"]["kind"] == "permission_request"
    assert (Call.objects.count(), Contact.objects.count(), CallPermission.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_a_check_allows_a_customer_who_granted_permission():
    agent, number_id = agent_with_number()
    grant(number_id)

    result = check_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": f"+{CUSTOMER}"}
    )

    assert (result["is_allowed"], result["refusals"], result["check_id"]) == (True, [], None)


@pytest.mark.django_db
def test_a_check_warns_before_the_unanswered_call_that_revokes_and_says_what_allows_it():
    agent, number_id = agent_with_number()
    grant(number_id)
    CallPermission.objects.update(consecutive_unanswered=3)

    result = check_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": f"+{CUSTOMER}"}
    )

    assert result["is_allowed"] is True
    assert [warning["code"] for warning in result["warnings"]] == ["last_unanswered_before_revocation"]
    assert result["allowed_because"].startswith("The customer granted permanent permission on ")


@pytest.mark.django_db
def test_a_landline_is_refused_before_dialling():
    agent, number_id = agent_with_number()
    grant(number_id, wa_id="442079460123")

    result = dial_frame(
        agent_id=agent.pk, frame={"business_number_id": number_id, "customer": "+44 20 7946 0123"}
    )

    assert (result["is_placed"], [refusal["code"] for refusal in result["refusals"]]) == (
        False,
        ["not_mobile"],
    )
    assert result["fallback"]["kind"] == "call_button"
    assert Call.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"business_number_id": 10**9, "customer": CUSTOMER}, "invalid_number"),
        ({"customer": "x"}, "invalid_customer"),
    ],
)
def test_bad_check_frames_are_refused(frame, code):
    agent, number_id = agent_with_number()

    result = check_frame(agent_id=agent.pk, frame={"check_id": 7, "business_number_id": number_id, **frame})

    assert (result["type"], result["check_id"], result["is_allowed"], result["error"]["code"]) == (
        "call.check.result", 7, False, code,
    )  # fmt: skip
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_a_check_of_a_number_typed_nationally_makes_no_contact():
    agent, number_id = agent_with_number()

    result = check_frame(
        agent_id=agent.pk, frame={"check_id": 1, "business_number_id": number_id, "customer": "07400 123000"}
    )

    assert (result["customer_number"], result["is_allowed"]) == ("+447400123000", False)
    assert (Contact.objects.count(), CallPermission.objects.count()) == (0, 0)


@pytest.mark.django_db(transaction=True)
async def test_a_dialer_error_comes_in_the_dialers_own_answer_over_the_socket():
    agent, number_id = await sync_to_async(agent_with_number)()
    communicator = await open_socket(agent.user)
    await communicator.connect()
    await communicator.receive_json_from(timeout=2)  # presence on connect

    await communicator.send_json_to(
        {"type": "call.check", "check_id": 2, "business_number_id": number_id, "customer": "+44 12"}
    )
    reply = await communicator.receive_json_from(timeout=5)

    assert (reply["type"], reply["check_id"], reply["error"]["code"]) == (
        "call.check.result",
        2,
        "invalid_customer",
    )
    await communicator.disconnect()
