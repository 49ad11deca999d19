"""The work after a call, in Celery: transcribe, then summarise; and the sweeps of recordings."""

import logging

from celery import shared_task

from core.logs import about_call_now
from core.processes import release_freed_memory
from recordings.selectors import call_of_recording
from recordings.services import (
    TransientError,
    call_summarise,
    recording_fail,
    recording_transcribe,
    recordings_expire,
    recordings_requeue_stalled,
)

logger = logging.getLogger(__name__)

MAX_TRANSCRIBE_RETRIES = 3


@shared_task(name="recordings.transcribe_call", bind=True, acks_late=True, max_retries=MAX_TRANSCRIBE_RETRIES)
def transcribe_call(self, *, recording_id: int) -> bool:
    """Transcribe a call's recording; the summary follows. Idempotent (acks_late: a worker lost
    mid-way leaves the task to another). Storage errors are retried with backoff, then failed."""
    about_call_now(call_of_recording(recording_id=recording_id))  # every line of it names the call
    try:
        return recording_transcribe(recording_id=recording_id)
    except TransientError as error:
        if self.request.retries >= MAX_TRANSCRIBE_RETRIES:
            recording_fail(
                recording_id=recording_id, reason=f"gave up after {self.request.retries + 1} tries: {error}"
            )
            return False
        raise self.retry(exc=error, countdown=min(300, 10 * 2**self.request.retries)) from error
    finally:
        release_freed_memory()  # the decoded audio and the model's buffers of this recording


@shared_task(name="recordings.summarise_call", acks_late=True)
def summarise_call(*, call_id: int) -> bool:
    """Summarise a transcribed call (again, after its wrap-up is filed). Idempotent."""
    return call_summarise(call_id=call_id) is not None


@shared_task(name="recordings.expire")
def expire() -> int:
    """Retention sweep: recordings past their number's retention go, with what was derived from them."""
    return recordings_expire()


@shared_task(name="recordings.requeue_stalled")
def requeue_stalled() -> int:
    """Safety sweep: recordings whose work stalled (a lost task or worker) are queued again."""
    return recordings_requeue_stalled()
