"""`manage.py seed_demo`: the demo's users, number and templates, and the file of their passwords."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from assistant import samples
from assistant.models import AssistantSettings
from messaging.models import Template

pytestmark = pytest.mark.django_db


def test_seed_demo_keeps_every_demo_users_password_in_its_file(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo")
    first = (tmp_path / "demo-credentials.txt").read_text().splitlines()
    get_user_model().objects.filter(username="admin").delete()  # a demo made before the administrator

    call_command("seed_demo")

    lines = (tmp_path / "demo-credentials.txt").read_text().splitlines()
    assert [line.split()[0] for line in first] == ["admin", "supervisor", "agent1", "agent2", "agent3"]
    assert lines[1:] == first[1:]
    assert lines[0].split()[0] == "admin" and lines[0] != first[0]
    assert get_user_model().objects.get(username="admin").check_password(lines[0].split()[1])
    assert Template.objects.filter(status="APPROVED").count() == 5
    assistant = AssistantSettings.objects.get()
    assert assistant.is_enabled
    assert assistant.business_number.knowledge_entries.count() == len(samples.ENTRIES)  # once, not twice
    assert "`admin` is the administrator" in capsys.readouterr().out
