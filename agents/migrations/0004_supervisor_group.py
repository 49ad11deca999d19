from django.contrib.auth.management import create_permissions
from django.db import migrations

from agents.management.commands.supervisor_group import supervisor_group_sync


def supervisor_group_create(apps, schema_editor) -> None:
    # Django makes permissions after the last migration (post_migrate); on a new database the group
    # needs them before that, so they are made here, from the models as this migration sees them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    supervisor_group_sync(
        group_model=apps.get_model("auth", "Group"), permission_model=apps.get_model("auth", "Permission")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0003_queue_language"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("calls", "0003_call_answered_at"),
        ("compliance", "0002_callpermission_auditevent_and_more"),
        ("integrations", "0004_api_writes"),
        ("messaging", "0005_send_claims"),
        ("recordings", "0002_transcripts_summaries_erasures"),
        ("whatsapp", "0003_businessnumber_recording_retention_days"),
    ]

    # Undone, the group stays: it may be older than this migration (the demo data made one).
    operations = [migrations.RunPython(supervisor_group_create, migrations.RunPython.noop)]
