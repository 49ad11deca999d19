"""What customers hear from us: the notice and the closing message in their queue's language; the
recording notice of a call we place in the customer's own."""

import asyncio
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.utils import timezone

from agents.tests.factories import QueueFactory
from calls import routing
from calls.bridge import RecordingResult
from calls.media import CallMedia, MediaProcess, outbound_notice_for
from calls.models import Call, LiveCallCount
from calls.prompts import (
    CLOSING,
    NOTICE,
    OUTBOUND_NOTICE,
    available_languages,
    language_for_country,
    prompt_for,
)
from calls.tests.factories import CallFactory
from messaging.models import Contact


def test_prompts_come_in_the_queue_language_and_fall_back_to_english():
    spanish = prompt_for(NOTICE, "es")
    unknown = prompt_for(NOTICE, "xx")
    hostile = prompt_for(CLOSING, "../../settings")

    assert (spanish.language, spanish.path.name) == ("es", "es.wav")
    assert "grabada" in spanish.text
    assert 5 < spanish.duration_s < 15
    assert (unknown.language, hostile.language) == ("en", "en")
    assert "may be recorded" in unknown.text
    assert {"en", "es", "pt", "hi"} <= set(available_languages(NOTICE)) == set(available_languages(CLOSING))
    assert set(available_languages(NOTICE)) == set(available_languages(OUTBOUND_NOTICE))
    with pytest.raises(ValueError):
        prompt_for("jingle", "en")


@pytest.mark.parametrize(
    ("country", "language"),
    [("BR", "pt"), ("mx", "es"), ("IN", "hi"), ("US", "en"), ("DE", "pt"), ("", "pt"), ("../", "pt")],
)
def test_a_customers_language_is_their_countrys_first_recorded_one_else_the_default(country, language):
    assert language_for_country(country, kind=OUTBOUND_NOTICE, default="pt") == language


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("wa_id", "country", "queue_language", "language"),
    [
        ("5511987654321", "", "es", "pt"),  # Brazil, read from the number
        ("447700900123", "ES", "pt", "es"),  # the contact's country comes first
        ("4915123456789", "DE", "es", "es"),  # no German recording: the number's queue's language
        ("4915123456789", "DE", None, "en"),  # and without a queue, English
    ],
)
def test_a_customer_we_call_hears_the_outbound_notice_in_their_language(
    number, wa_id, country, queue_language, language
):
    if queue_language is not None:
        QueueFactory(name="Sales", language=queue_language).business_numbers.add(number)
    contact = Contact.objects.create(wa_id=wa_id, country=country)
    call = CallFactory(business_number=number, contact=contact, direction=Call.Direction.OUTBOUND, queue=None)

    notice = outbound_notice_for(call=call)

    assert (notice.kind, notice.language) == (OUTBOUND_NOTICE, language)
    assert notice.text == prompt_for(OUTBOUND_NOTICE, language).text


def test_the_outbound_notice_says_only_that_the_call_is_recorded():
    for language in available_languages(OUTBOUND_NOTICE):
        outbound, inbound = prompt_for(OUTBOUND_NOTICE, language), prompt_for(NOTICE, language)

        assert outbound.text in inbound.text and outbound.text != inbound.text  # the greeting's middle
        assert outbound.duration_s < inbound.duration_s / 2


@pytest.mark.django_db
def test_at_max_wait_the_caller_hears_the_closing_message_before_meta_is_told(
    queue, number, django_capture_on_commit_callbacks
):
    queue.language = "pt"
    queue.save()
    LiveCallCount.objects.create(business_number=number, direction="inbound", live=1)
    call = CallFactory(
        queue=queue, business_number=number, status=Call.Status.QUEUED, media_channel="media.test!1"
    )
    routing.call_waits(call_id=call.pk)
    Call.objects.filter(pk=call.pk).update(queued_at=timezone.now() - timedelta(seconds=queue.max_wait_s))

    with (
        mock.patch("calls.services.send_on_commit") as send_on_commit,
        mock.patch("calls.tasks.terminate_on_meta.apply_async") as terminate,
        mock.patch("calls.tasks.send_call_us_button.apply_async"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        routing.call_wait_overdue(call_id=call.pk)

    send_on_commit.assert_called_once_with(
        "media.test!1", {"type": "call.hangup", "call_id": call.pk, "is_farewell": True}
    )
    [(_, options)] = [(args, kwargs) for args, kwargs in terminate.call_args_list]
    assert options["kwargs"] == {"call_id": call.pk}
    closing_s = prompt_for(CLOSING, "pt").duration_s
    assert options["countdown"] == pytest.approx(closing_s + routing.FAREWELL_MARGIN_S)
    assert LiveCallCount.objects.get(business_number=number).live == 0  # the slot is free at once


class _BridgeThatRecordsWhatItSays:
    def __init__(self, recording: Path) -> None:
        self.said: list[tuple[Path, float]] = []
        self.recording = recording

    async def say_goodbye(self, closing: Path, *, timeout_s: float) -> bool:
        self.said.append((closing, timeout_s))
        return True

    async def close(self) -> RecordingResult:
        return RecordingResult(path=self.recording, duration_s=1.0)


@pytest.mark.django_db
@pytest.mark.parametrize("is_farewell", [True, False])
def test_the_media_process_says_goodbye_in_the_call_language_only_for_a_farewell(tmp_path, is_farewell):
    media = CallMedia(process=MediaProcess(handlers={}), spool_dir=tmp_path)
    bridge = _BridgeThatRecordsWhatItSays(tmp_path / "call-7.wav")
    media.bridges[7], media.languages[7], media.answered[7] = bridge, "es", asyncio.Event()
    media.answered[7].set()  # the customer was on the line: the recording is kept

    with mock.patch("calls.media.recording_finished.send") as finished:
        asyncio.run(media.hang_up({"type": "call.hangup", "call_id": 7, "is_farewell": is_farewell}))

    closing = prompt_for(CLOSING, "es")
    assert bridge.said == ([(closing.path, closing.duration_s + 2)] if is_farewell else [])
    assert finished.call_args.kwargs["call_id"] == 7
    assert media.bridges == {} and media.languages == {}
