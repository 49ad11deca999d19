from datetime import timedelta

import pytest
from django.utils import timezone

from calls.tests.factories import CallFactory
from compliance.models import ConsentRecord
from compliance.services import consent_notice_completed, consent_notice_started

pytestmark = pytest.mark.django_db


def start(call, at):
    return consent_notice_started(
        call_id=call.pk,
        contact_id=call.contact_id,
        business_number_id=call.business_number_id,
        language="es",
        text="Esta llamada puede ser grabada.",
        at=at,
    )


def test_a_notice_is_recorded_once_per_call_and_completed_once():
    call = CallFactory()
    started = timezone.now()

    first = start(call, started)
    again = start(call, started + timedelta(seconds=1))
    is_completed = consent_notice_completed(call_id=call.pk, at=started + timedelta(seconds=11))
    is_completed_again = consent_notice_completed(call_id=call.pk, at=started + timedelta(seconds=20))

    record = ConsentRecord.objects.get()
    assert first.pk == again.pk
    assert (is_completed, is_completed_again) == (True, False)
    assert (record.language, record.kind) == ("es", "recording_notice")
    assert record.text == "Esta llamada puede ser grabada."
    assert (record.started_at, record.completed_at) == (started, started + timedelta(seconds=11))
    assert record.contact_id == call.contact_id


def test_completing_a_notice_that_never_started_changes_nothing():
    call = CallFactory()

    assert consent_notice_completed(call_id=call.pk, at=timezone.now()) is False
    assert not ConsentRecord.objects.exists()
