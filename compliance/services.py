from datetime import datetime

from django.db import IntegrityError, transaction

from compliance.models import ConsentRecord


def consent_notice_started(
    *, call_id: int, contact_id: int, business_number_id: int, language: str, text: str, at: datetime
) -> ConsentRecord:
    """The recording notice began playing to a caller (once per call: a repeat returns the first)."""
    try:
        with transaction.atomic():
            return ConsentRecord.objects.create(
                call_id=call_id,
                contact_id=contact_id,
                business_number_id=business_number_id,
                kind=ConsentRecord.Kind.RECORDING_NOTICE,
                language=language,
                text=text,
                started_at=at,
            )
    except IntegrityError:
        return ConsentRecord.objects.get(call_id=call_id, kind=ConsentRecord.Kind.RECORDING_NOTICE)


def consent_notice_completed(*, call_id: int, at: datetime) -> bool:
    """The caller heard the notice to its end; False if there was no notice or it was marked already."""
    return bool(
        ConsentRecord.objects.filter(
            call_id=call_id, kind=ConsentRecord.Kind.RECORDING_NOTICE, completed_at__isnull=True
        ).update(completed_at=at)
    )
