from django.conf import settings
from django.core.management.base import BaseCommand

from recordings import crypto
from recordings.models import Recording
from recordings.services import recording_reseal


class Command(BaseCommand):
    help = (
        "Seal every recording not sealed with RECORDING_KEY_ID again with it (and seal those stored "
        "before encryption at rest). Once none is left, older keys can be dropped from RECORDING_KEYS."
    )

    def handle(self, *args, **options) -> None:
        key_id = settings.RECORDING_KEY_ID
        resealed, failed = 0, 0
        for recording_id in Recording.objects.exclude(key_id=key_id).values_list("pk", flat=True).iterator():
            try:
                resealed += recording_reseal(recording_id=recording_id, key_id=key_id)
            except (OSError, crypto.RecordingDamaged) as error:  # the others are still resealed
                failed += 1
                self.stderr.write(f"Recording {recording_id} not resealed: {error}")
        left = Recording.objects.exclude(key_id=key_id).count()
        self.stdout.write(
            f"Resealed {resealed} recording(s) with key {key_id!r}; {left} not yet ({failed} failed)."
        )
