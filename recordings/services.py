import hashlib
import logging
from pathlib import Path

from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls.models import Call
from recordings.models import Recording, recordings_storage

logger = logging.getLogger(__name__)


def recording_store(
    *, call_id: int, path: Path, duration_s: float, customer_rms: float, agent_rms: float
) -> Recording | None:
    """Move a finished recording from the media process's spool into the recordings storage.

    Idempotent: a call has one recording; a second one for the same call is discarded, and so is
    one for a call that no longer exists (None). The spool file is removed once stored or discarded.
    """
    existing = Recording.objects.filter(call_id=call_id).first()
    if existing is not None or not Call.objects.filter(pk=call_id).exists():
        path.unlink(missing_ok=True)
        return existing
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 16), b""):
            digest.update(block)
    storage = recordings_storage()
    day = timezone.now().strftime("%Y/%m/%d")
    with path.open("rb") as source:
        name = storage.save(f"{day}/call-{call_id}.wav", File(source))
    try:
        with transaction.atomic():
            recording = Recording.objects.create(
                call_id=call_id,
                file=name,
                duration_s=round(duration_s, 3),
                size_bytes=storage.size(name),
                sha256=digest.hexdigest(),
                customer_rms=customer_rms,
                agent_rms=agent_rms,
            )
    except IntegrityError:  # stored twice at once: the first one stays
        storage.delete(name)
        path.unlink(missing_ok=True)
        return Recording.objects.filter(call_id=call_id).first()
    path.unlink(missing_ok=True)
    logger.info("call %s: recording stored as %s (%.1f s)", call_id, name, duration_s)
    return recording


def recording_finished_received(
    sender, *, call_id: int, path: Path, duration_s: float, customer_rms: float, agent_rms: float, **kwargs
) -> None:
    recording_store(
        call_id=call_id, path=path, duration_s=duration_s, customer_rms=customer_rms, agent_rms=agent_rms
    )
