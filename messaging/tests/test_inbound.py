"""Nothing a customer sends is dropped (WHATSAPP_API.md §10.3): every type joins the thread with what it
shows, whole or not; the files customers send are fetched from Meta by a worker and shown to those who
see the thread, and only to them."""

import copy
import json
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.html import escape

from agents.models import QueueMembership
from agents.tests.factories import AgentFactory, QueueFactory
from integrations.models import ApiKey
from integrations.services import api_key_create
from messaging.models import Message
from messaging.selectors import thread_of
from messaging.tasks import MEDIA_FETCH_RETRIES, fetch_media, fetch_pending_media
from recordings.services import contact_erase
from whatsapp.models import WebhookDelivery
from whatsapp.tests import payloads
from whatsapp.tests.conftest import post_webhook, sandbox_serving
from whatsapp.tests.factories import BusinessNumberFactory

pytestmark = pytest.mark.django_db

CUSTOMER = "447700900123"
THREAD_TEXTS = {
    "text": "Body Text",
    "image": "The broken part",
    "voice note": "Voice note",
    "audio": "Audio",
    "video": "It rattles",
    "document": "invoice-1042.pdf — My invoice",
    "sticker": "Sticker",
    "location": "Location: Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (37.4611978, -122.2164385)",
    "contacts": "Contact cards: Chandler Bing +1 555-555-5555; Monica",
    "button reply": "Yes, call me",
    "list reply": "Tomorrow — Between 9 and 12",
    "call permission reply": "Allowed calls (call permission request)",
    "template quick reply": "Stop promotions",
    "reaction": "Reacted \U0001f44d to message wamid.out1",
    "reaction taken back": "Took back a reaction to message wamid.out1",
    "order": "Order: 2 products, 5 items, catalog 354160437058781 — Please deliver after 6",
    "system": "User A changed from 16315553602 to 16315553699",
    "unsupported": "WhatsApp could not show this message: Message type unknown "
    "(Message type is currently not supported.)",
}
MEDIA_FIELDS = {  # media_id, mime_type, media_filename
    "image": ("1029384756", "image/jpeg", ""),
    "voice note": ("1029384757", "audio/ogg; codecs=opus", ""),
    "audio": ("1029384758", "audio/mpeg", ""),
    "video": ("1029384759", "video/mp4", ""),
    "document": ("1029384760", "application/pdf", "invoice-1042.pdf"),
    "sticker": ("1029384761", "image/webp", ""),
}


@pytest.fixture
def number():
    return BusinessNumberFactory(phone_number_id=payloads.PHONE_NUMBER_ID, waba_id=payloads.WABA_ID)


@pytest.fixture
def media_root(settings, tmp_path):
    """Django's default storage, where customers' files are kept, under tmp_path for the test."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def sandbox(settings, number):
    with sandbox_serving(settings, number) as sandbox:
        sandbox.customer = sandbox.thread.call(sandbox.add_customer, wa_id=CUSTOMER, name="Ada")
        sandbox.delivered = 0
        yield sandbox


def deliver(client, sandbox) -> None:
    """What the sandbox has sent since last asked reaches our webhook endpoint, as Meta delivers it."""
    sandbox.thread.run(sandbox.sender.drain)
    for delivery in sandbox.sender.sent[sandbox.delivered :]:
        assert post_webhook(client, delivery.body).status_code == 200
    sandbox.delivered = len(sandbox.sender.sent)


def agent_of(number):
    agent = AgentFactory()
    queue = QueueFactory()
    queue.business_numbers.add(number)
    QueueMembership.objects.create(queue=queue, agent=agent)
    return agent


@pytest.fixture
def broker_queue():
    """This session's task queue, which no worker takes from, emptied for the test (a row's id may be
    one an earlier test's row had)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    client.close()


def queued_fetches(message_id: int) -> int:
    """Fetches of the message's file waiting on the broker."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        waiting = [
            json.loads(raw)["headers"] for raw in client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)
        ]
    finally:
        client.close()
    return sum(
        headers["task"] == "messaging.fetch_media" and f"'message_id': {message_id}" in headers["kwargsrepr"]
        for headers in waiting
    )


# --- Every type joins the thread -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(THREAD_TEXTS))
def test_every_type_a_customer_sends_joins_the_thread_with_what_it_shows(client, number, admin_user, name):
    response = post_webhook(client, payloads.every_type_message(name))

    message = Message.objects.get(wa_message_id="wamid.typed1")
    assert response.status_code == 200
    assert (message.direction, message.contact.wa_id, message.message_type, message.text) == (
        "inbound", payloads.CUSTOMER, payloads.EVERY_TYPE[name][0], THREAD_TEXTS[name],
    )  # fmt: skip
    assert message.note == ""
    client.force_login(admin_user)
    page = client.get(reverse("calls:contact", args=[message.contact_id])).content.decode()
    assert escape(THREAD_TEXTS[name]) in page


@pytest.mark.parametrize("name", list(MEDIA_FIELDS))
def test_a_file_a_customer_sends_is_recorded_to_be_fetched(client, number, name):
    post_webhook(client, payloads.every_type_message(name))

    message = Message.objects.get()
    assert (message.media_id, message.mime_type, message.media_filename) == MEDIA_FIELDS[name]
    assert (message.media_sha256, message.media_status, message.media.name) == (
        payloads.MEDIA_SHA256, Message.MediaStatus.PENDING, "",
    )  # fmt: skip


def test_a_reaction_names_the_message_it_is_on(client, number):
    post_webhook(client, payloads.every_type_message("reaction"))

    message = Message.objects.get()
    assert (message.reacts_to, message.emoji, message.media_status) == ("wamid.out1", "\U0001f44d", "")


def test_an_unsupported_message_keeps_metas_error(client, number):
    post_webhook(client, payloads.every_type_message("unsupported"))

    message = Message.objects.get()
    assert message.error == "131051 Message type unknown: Message type is currently not supported."
    assert message.raw["item"]["errors"] == [payloads.UNSUPPORTED_ERROR]


def test_a_type_switchboard_does_not_know_is_kept_as_meta_sent_it(client, number):
    post_webhook(client, payloads.customer_message("ephemeral", {"expires_in": 3600, "body": "hi"}))

    message = Message.objects.get()
    assert (message.message_type, message.text, message.note) == (
        "ephemeral",
        '{"ephemeral": {"body": "hi", "expires_in": 3600}, "type": "ephemeral"}',
        "Switchboard does not know messages of type 'ephemeral': kept as Meta sent it",
    )


def test_an_interactive_message_meta_could_not_read_keeps_its_error(client, number):
    """A message pywa's fixtures show: an interactive reply without its object, Meta's error beside it."""
    payload = payloads.customer_message(
        "interactive", None, context={"from": payloads.BUSINESS, "id": "wamid.q"}
    )
    payload["entry"][0]["changes"][0]["value"]["errors"] = [
        {
            "code": 131000,
            "title": "Something went wrong",
            "error_data": {"details": "Unsupported webhook payload"},
        }
    ]

    post_webhook(client, payload)

    message = Message.objects.get()
    assert (message.message_type, message.error, message.note) == (
        "interactive", "131000 Something went wrong: Unsupported webhook payload", "'interactive' is missing",
    )  # fmt: skip
    assert message.text == '{"context": {"from": "13175551399", "id": "wamid.q"}, "type": "interactive"}'


def test_a_form_reply_and_a_message_meta_could_not_show_join_the_thread_whole(client, number):
    """Replies Switchboard did not read before: a WhatsApp Flow's answers, and an `unsupported` message
    that names its type (pywa tests/data/updates/message.json "unsupported_with_type")."""
    unsupported = payloads.customer_message(
        "unsupported", {"type": "pool"}, "wamid.typed2", errors=[payloads.UNSUPPORTED_ERROR]
    )

    post_webhook(client, payloads.form_reply())
    post_webhook(client, unsupported)

    form, poll = Message.objects.order_by("message_type")
    assert (form.message_type, form.text, form.note) == (
        "interactive", "Form sent: comment_text: Comment Text; delivery_rating: 4", "",
    )  # fmt: skip
    assert (poll.message_type, poll.error) == (
        "unsupported",
        "131051 Message type unknown: Message type is currently not supported.",
    )
    assert poll.text.startswith("WhatsApp could not show this message (of type 'pool'): Message type unknown")


def _item_mutations(item: dict):
    """The message with one part removed, or replaced by something of the wrong shape, each in turn."""

    def paths(node, path=()):
        if isinstance(node, dict):
            for key, child in node.items():
                yield (*path, key)
                yield from paths(child, (*path, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                yield (*path, index)
                yield from paths(child, (*path, index))

    for path in paths(item):
        if path[0] in ("from", "id"):
            continue
        for wrong in (None, ["wrong"], "wrong", 7):
            mutated = copy.deepcopy(item)
            parent = mutated
            for key in path[:-1]:
                parent = parent[key]
            if wrong is None and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = wrong
            yield mutated


@pytest.mark.parametrize("name", list(THREAD_TEXTS))
def test_a_message_with_parts_missing_or_misshapen_is_stored_never_refused(client, number, name):
    item = payloads.every_type_message(name)["entry"][0]["changes"][0]["value"]["messages"][0]
    mutations = list(_item_mutations(item))

    for index, mutated in enumerate(mutations):
        mutated["id"] = f"wamid.bad{index}"

    response = post_webhook(client, payloads.envelope("messages", payloads.messages_value(mutations)))

    assert response.status_code == 200
    stored = dict(Message.objects.values_list("wa_message_id", "message_type"))
    assert sorted(stored) == sorted(f"wamid.bad{index}" for index in range(len(mutations)))
    assert not any(delivery.problems for delivery in WebhookDelivery.objects.all())


def test_a_message_without_an_id_is_stored_once(client, number):
    payload = payloads.every_type_message("text")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]

    first, again = post_webhook(client, payload), post_webhook(client, payload)

    message = Message.objects.get()
    assert (first.status_code, again.status_code, again.json()["duplicates"]) == (200, 200, 1)
    assert (message.wa_message_id, message.text) == (None, "Body Text")


def test_a_message_without_its_sender_is_the_one_contact_of_the_delivery(client, number):
    payload = payloads.every_type_message("system")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"]

    post_webhook(client, payload)

    assert Message.objects.get().contact.wa_id == payloads.CUSTOMER


def test_a_message_that_could_join_no_thread_is_kept_with_its_delivery(client, number):
    """Without a sender (no 'from', no contact) there is no thread to join: the delivery keeps it, with
    the reason, for the back office."""
    payload = payloads.every_type_message("system")
    value = payload["entry"][0]["changes"][0]["value"]
    del value["messages"][0]["from"], value["contacts"]

    response = post_webhook(client, payload)

    delivery = WebhookDelivery.objects.get()
    assert (response.status_code, Message.objects.count()) == (200, 0)
    assert delivery.problems == [
        {
            "where": "entry[0].changes[0].value.messages[0]",
            "reason": "a message needs 'from' (or one contact) to join a thread",
        }
    ]
    assert json.loads(bytes(delivery.body)) == payload


def test_a_redelivered_file_message_is_one_message_fetched_once(
    client, number, broker_queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, payloads.every_type_message("image"))
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(client, payloads.every_type_message("image"))

    message = Message.objects.get()
    assert queued_fetches(message.pk) == 1


# --- Reactions ------------------------------------------------------------------------------------


def test_the_customers_reaction_shows_on_the_message_it_is_on(client, number, admin_user):
    post_webhook(client, payloads.text_message("wamid.in1", "Is it in stock?"))
    reactions = [("\U0001f44d", "1697043400"), ("\U0001f62e", "1697043500")]
    for index, (emoji, at) in enumerate(reversed(reactions)):  # the later one delivered first
        payload = payloads.customer_message(
            "reaction", {"message_id": "wamid.in1", "emoji": emoji}, f"wamid.reaction{index}", timestamp=at
        )
        post_webhook(client, payload)
    post_webhook(
        client,
        payloads.customer_message(
            "reaction", {"message_id": "wamid.long-ago", "emoji": "\u2764"}, "wamid.r9"
        ),
    )

    thread = thread_of(contact_id=Message.objects.first().contact_id, business_number_id=number.pk)

    assert [(message.text, getattr(message, "customer_reaction", None)) for message in thread] == [
        ("Is it in stock?", "\U0001f62e"),
        ("Reacted \u2764 to message wamid.long-ago", None),
    ]
    client.force_login(admin_user)
    page = client.get(reverse("calls:contact", args=[thread[0].contact_id])).content.decode()
    assert 'title="The customer\'s reaction">\U0001f62e</span>' in page.replace("&#x27;", "'")


def test_a_reaction_taken_back_leaves_the_message_without_one(client, number):
    post_webhook(client, payloads.text_message("wamid.in1", "Is it in stock?"))
    react = {"message_id": "wamid.in1", "emoji": "\U0001f44d"}
    post_webhook(client, payloads.customer_message("reaction", react, "wamid.r1", timestamp="1697043400"))
    taken_back = payloads.customer_message(
        "reaction", {"message_id": "wamid.in1"}, "wamid.r2", timestamp="1697043500"
    )
    post_webhook(client, taken_back)

    [message] = thread_of(contact_id=Message.objects.first().contact_id, business_number_id=number.pk)

    assert (message.text, message.customer_reaction) == ("Is it in stock?", "")


# --- Files: fetched from Meta by a worker, shown to those who see the thread -------------------------


def test_a_photo_voice_note_and_document_are_fetched_from_meta_and_shown_in_the_thread(
    client, number, sandbox, media_root, admin_user
):
    customer, thread = sandbox.customer, sandbox.thread
    thread.call(customer.send_photo, number.phone_number_id, caption="The broken part")
    thread.call(customer.send_voice_note, number.phone_number_id)
    thread.call(customer.send_document, number.phone_number_id, caption="My invoice")
    deliver(client, sandbox)
    photo, voice_note, document = Message.objects.order_by("pk")

    fetched = [fetch_media(message_id=message.pk) for message in (photo, voice_note, document)]

    assert fetched == [True, True, True]
    for message in (photo, voice_note, document):
        message.refresh_from_db()
        sent = sandbox.meta.media[message.media_id]
        with message.media.open("rb") as stored:
            assert stored.read() == sent.content
        assert (message.media_status, message.media_size, message.mime_type) == (
            "stored", len(sent.content), sent.mime_type,
        )  # fmt: skip
        assert ("GET", f"/v23.0/{message.media_id}") in sandbox.traffic.requests
    assert [message.text for message in (photo, voice_note, document)] == [
        "The broken part", "Voice note", "invoice-1042.pdf — My invoice",
    ]  # fmt: skip
    assert sandbox.traffic.requests.count(("GET", "/whatsapp_business/attachments/")) == 3
    client.force_login(admin_user)
    page = client.get(reverse("calls:contact", args=[photo.contact_id])).content.decode()
    assert f'<img class="message-media" src="/messages/{photo.pk}/media/" alt="The broken part"' in page
    assert (
        f'<audio class="message-media" controls preload="metadata" src="/messages/{voice_note.pk}/media/">'
        in page
    )
    assert f'<a class="message-media" href="/messages/{document.pk}/media/" download>Download</a>' in page


def test_a_file_is_served_to_those_who_see_its_thread_and_nobody_else(client, number, sandbox, media_root):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()
    fetch_media(message_id=photo.pk)
    url = reverse("messaging:message-media", args=[photo.pk])
    agent, other_agent = agent_of(number), agent_of(BusinessNumberFactory())

    anonymous = client.get(url)
    client.force_login(other_agent.user)
    theirs = client.get(url)
    client.force_login(agent.user)
    ours = client.get(url)

    assert (anonymous.status_code, theirs.status_code, ours.status_code) == (302, 404, 200)
    assert b"".join(ours.streaming_content) == sandbox.meta.media[photo.media_id].content
    assert (ours["Content-Type"], ours["Content-Disposition"].split(";")[0]) == ("image/png", "inline")


def test_a_file_no_browser_should_render_is_only_ever_a_download(client, number, media_root, admin_user):
    """A file that claims to be an SVG image (which can carry script) is served as bytes to save."""
    post_webhook(client, payloads.customer_message("image", {"mime_type": "image/svg+xml", "id": "55"}))
    message = Message.objects.get()
    message.media.save("55.svg", ContentFile(b"<svg/>"))
    Message.objects.filter(pk=message.pk).update(media_status=Message.MediaStatus.STORED)
    client.force_login(admin_user)

    response = client.get(reverse("messaging:message-media", args=[message.pk]))
    page = client.get(reverse("calls:contact", args=[message.contact_id])).content.decode()

    assert (response["Content-Type"], response["Content-Disposition"]) == (
        "application/octet-stream", f'attachment; filename="whatsapp-image-{message.pk}.svg"',
    )  # fmt: skip
    assert f'<a class="message-media" href="/messages/{message.pk}/media/" download>' in page
    assert '<img class="message-media"' not in page


def test_a_file_meta_cannot_give_for_a_moment_is_fetched_on_a_retry(client, number, sandbox, media_root):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()
    sandbox.inject_faults(2, status=503)  # Meta answers the first two look-ups with a 503

    result = fetch_media.apply(kwargs={"message_id": photo.pk})

    photo.refresh_from_db()
    assert (result.get(), photo.media_status) == (True, Message.MediaStatus.STORED)
    assert sandbox.traffic.requests.count(("GET", f"/v23.0/{photo.media_id}")) == 3


def test_a_file_meta_keeps_failing_to_give_is_marked_failed_after_the_retries(
    client, number, sandbox, media_root
):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()
    sandbox.inject_faults(MEDIA_FETCH_RETRIES + 1, status=503)

    result = fetch_media.apply(kwargs={"message_id": photo.pk})

    photo.refresh_from_db()
    assert (result.get(), photo.media_status) == (False, Message.MediaStatus.FAILED)
    assert photo.media_error.startswith("WhatsApp could not be reached, 5 retries:")
    assert sandbox.traffic.requests.count(("GET", f"/v23.0/{photo.media_id}")) == MEDIA_FETCH_RETRIES + 1


@pytest.mark.parametrize(
    ("why", "expected_error"),
    [
        ("the link expired", "WhatsApp answered HTTP 404: the file is gone or its link expired"),
        ("Meta no longer has it", "WhatsApp refused it (error 100): Unsupported get request."),
    ],
)
def test_a_file_meta_refuses_is_marked_failed_at_once(
    client, number, sandbox, media_root, why, expected_error
):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()
    if why == "the link expired":
        sandbox.meta.rules.media_url_lifetime = timedelta(seconds=-60)
    else:
        sandbox.thread.call(sandbox.meta.media.clear)

    result = fetch_media.apply(kwargs={"message_id": photo.pk})

    photo.refresh_from_db()
    assert (result.get(), photo.media_status, photo.media.name) == (False, Message.MediaStatus.FAILED, "")
    assert photo.media_error.startswith(expected_error)
    assert sandbox.traffic.requests.count(("GET", f"/v23.0/{photo.media_id}")) == 1
    assert not any(media_root.rglob("*.*"))


def test_a_file_over_the_size_kept_is_not_downloaded(client, number, sandbox, media_root, settings):
    settings.WHATSAPP_MEDIA_MAX_BYTES = 100
    sandbox.thread.call(sandbox.customer.send_document, number.phone_number_id)
    deliver(client, sandbox)
    document = Message.objects.get()

    assert fetch_media(message_id=document.pk) is False

    document.refresh_from_db()
    size = len(sandbox.meta.media[document.media_id].content)
    assert (document.media_status, document.media_error) == (
        Message.MediaStatus.FAILED, f"the file is {size} bytes; at most 100 are kept",
    )  # fmt: skip
    assert ("GET", "/whatsapp_business/attachments/") not in sandbox.traffic.requests


def test_a_file_fetched_twice_is_kept_once(client, number, sandbox, media_root):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()

    fetched = [fetch_media(message_id=photo.pk), fetch_media(message_id=photo.pk)]

    assert fetched == [True, False]
    assert [path.name for path in media_root.rglob("*.*")] == [f"{photo.pk}.png"]


def test_the_sweep_queues_again_a_fetch_lost_on_the_way(client, number, broker_queue):
    post_webhook(client, payloads.every_type_message("image"))
    message = Message.objects.get()
    recent = Message.objects.create(
        business_number=number, contact=message.contact, direction="inbound", message_type="image",
        media_id="77", media_status=Message.MediaStatus.PENDING, status="received",
    )  # fmt: skip
    Message.objects.filter(pk=message.pk).update(created_at=message.created_at - timedelta(minutes=11))

    assert fetch_pending_media() == 1

    assert (queued_fetches(message.pk), queued_fetches(recent.pk)) == (1, 0)


def test_erasing_a_contact_deletes_the_files_they_sent(
    client, number, sandbox, media_root, django_capture_on_commit_callbacks
):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id)
    deliver(client, sandbox)
    photo = Message.objects.get()
    fetch_media(message_id=photo.pk)

    with django_capture_on_commit_callbacks(execute=True):
        erasure = contact_erase(contact_id=photo.contact_id, requested_by_id=None, reason="GDPR request")

    assert erasure.counts["message_files"] == 1
    assert not any(media_root.rglob("*.*"))


# --- The API -------------------------------------------------------------------------------------------


def test_the_api_says_each_messages_type_and_whether_its_file_is_stored_never_metas_link(
    client, number, sandbox, media_root
):
    sandbox.thread.call(sandbox.customer.send_photo, number.phone_number_id, caption="The broken part")
    deliver(client, sandbox)
    post_webhook(client, payloads.every_type_message("reaction", "wamid.reaction1"))
    photo = Message.objects.get(message_type="image")
    fetch_media(message_id=photo.pk)
    photo.refresh_from_db()
    _, token = api_key_create(
        name="CRM", scopes=[ApiKey.Scope.READ], business_number_ids=[number.pk], created_by_id=None
    )

    response = client.get("/api/v1/messages/", HTTP_AUTHORIZATION=f"Bearer {token}")

    reaction, image = response.json()["results"]
    assert (image["type"], image["text"], image["media"], image["reaction"]) == (
        "image",
        "The broken part",
        {"status": "stored", "is_stored": True, "mime_type": "image/png", "filename": "",
         "size": photo.media_size, "error": ""},
        None,
    )  # fmt: skip
    assert (reaction["type"], reaction["media"], reaction["reaction"]) == (
        "reaction", None, {"message_id": "wamid.out1", "emoji": "\U0001f44d"},
    )  # fmt: skip
    assert "whatsapp_business/attachments" not in response.content.decode()
