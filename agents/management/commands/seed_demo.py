import os

from django.conf import settings
from django.core.management.base import BaseCommand

from agents.services import DEMO_NUMBER, demo_data_create
from assistant.demo import demo_assistant_create
from messaging.demo import demo_templates_create


class Command(BaseCommand):
    help = (
        "Create the demo administrator, supervisor, agents, queue, sandbox number, approved templates "
        "and the number's assistant (each once), and print the new users' passwords."
    )

    def handle(self, *args, **options) -> None:
        credentials_file = settings.VAR_DIR / "demo-credentials.txt"
        passwords = demo_data_create()
        templates = demo_templates_create(waba_id=DEMO_NUMBER["waba_id"])
        if templates:
            self.stdout.write(f"Approved templates added to the sandbox account: {', '.join(templates)}.")
        if demo_assistant_create(phone_number_id=DEMO_NUMBER["phone_number_id"]):
            self.stdout.write(
                "The demo number's assistant is on, with a sample knowledge base (admin: Assistant)."
            )
        if not passwords:
            where = f" (saved in {credentials_file})" if credentials_file.exists() else ""
            self.stdout.write(f"Demo users exist already{where}.")
            return
        # Users made by an earlier run keep their lines; the new ones are added.
        kept = {}
        if credentials_file.exists():
            for line in credentials_file.read_text().splitlines():
                if line.split():
                    kept[line.split()[0]] = line
        kept.update({username: f"{username:<12} {password}" for username, password in passwords.items()})
        lines = list(kept.values())
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text("\n".join(lines) + "\n")
        os.chmod(credentials_file, 0o600)
        self.stdout.write(self.style.SUCCESS("Demo users created. Sign in at /login/ with:"))
        for username, password in passwords.items():
            self.stdout.write(f"  {username:<12} {password}")
        self.stdout.write(
            f"(saved in {credentials_file}; `admin` is the administrator: API keys and users at /admin/)"
        )
