"""The back office: a supervisor erases a contact's personal data after saying why; the audit
stays read-only; and the commands that erase and rotate keys from the shell."""

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command

from agents.tests.factories import UserFactory
from calls.tests.factories import CallFactory, ContactFactory
from recordings.models import Erasure, Recording
from recordings.tests.test_services import derived, plaintext_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/messaging/contact/"


def staff(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_contact", "change_contact", *codenames])
    )
    return user


def test_a_supervisor_erases_a_contact_after_confirming_with_a_reason(client, recordings_storage, tmp_path):
    contact = ContactFactory(wa_id="447700900777", name="Ravi Patel")
    derived(CallFactory(contact=contact), tmp_path)
    client.force_login(staff("add_erasure"))
    chosen = {"action": "erase_personal_data", "_selected_action": [contact.pk]}

    asked = client.post(CHANGELIST, chosen)
    without_reason = client.post(CHANGELIST, {**chosen, "confirmed": "yes", "reason": " "})
    done = client.post(CHANGELIST, {**chosen, "confirmed": "yes", "reason": "request 2026-114"}, follow=True)

    assert "Reason (e.g. the request" in asked.content.decode()
    assert "Give the reason for the erasure." in without_reason.content.decode()
    assert "Erased the personal data of 1 contact(s)" in done.content.decode()
    contact.refresh_from_db()
    assert contact.wa_id == f"erased-{contact.pk}"
    assert not Recording.objects.exists()
    assert Erasure.objects.get().reason == "request 2026-114"


def test_staff_without_the_permission_cannot_erase(client):
    contact = ContactFactory(name="Ravi Patel")
    client.force_login(staff())

    client.post(
        CHANGELIST,
        {
            "action": "erase_personal_data",
            "_selected_action": [contact.pk],
            "confirmed": "yes",
            "reason": "x",
        },
    )

    contact.refresh_from_db()
    assert contact.name == "Ravi Patel"
    assert not Erasure.objects.exists()


def test_the_erasure_audit_is_read_only(client, admin_user):
    erasure = Erasure.objects.create(
        kind=Erasure.Kind.RETENTION, at="2026-11-27T00:00:00Z", counts={"recordings": 2}
    )
    client.force_login(admin_user)

    listed = client.get("/admin/recordings/erasure/")
    deleted = client.post(f"/admin/recordings/erasure/{erasure.pk}/delete/", {"post": "yes"})

    assert listed.status_code == 200
    assert deleted.status_code == 403
    assert Erasure.objects.filter(pk=erasure.pk).exists()


def test_erase_contact_command_erases_by_number_and_refuses_unknown_numbers(
    recordings_storage, tmp_path, capsys
):
    contact = ContactFactory(wa_id="447700900778")
    derived(CallFactory(contact=contact), tmp_path)

    call_command("erase_contact", "+44 7700 900778", reason="request 2026-115")

    assert "Erased +44…78: 1 recordings" in capsys.readouterr().out
    assert Erasure.objects.get().requested_by is None
    with pytest.raises(CommandError):
        call_command("erase_contact", "+447700900999", reason="request 2026-116")


def test_rotate_recording_keys_command_reseals_what_the_old_key_sealed(
    recordings_storage, tmp_path, settings, capsys, django_capture_on_commit_callbacks
):
    recording = derived(CallFactory(), tmp_path)
    audio = plaintext_of(recording)
    settings.RECORDING_KEYS = {**settings.RECORDING_KEYS, "2027": b"a-second-recording-key-32-bytes!"}
    settings.RECORDING_KEY_ID = "2027"

    with django_capture_on_commit_callbacks(execute=True):
        call_command("rotate_recording_keys")

    recording.refresh_from_db()
    assert "Resealed 1 recording(s) with key '2027'; 0 not yet (0 failed)." in capsys.readouterr().out
    assert (recording.key_id, plaintext_of(recording)) == ("2027", audio)
