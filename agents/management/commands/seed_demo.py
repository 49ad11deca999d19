import os

from django.conf import settings
from django.core.management.base import BaseCommand

from agents.services import demo_data_create


class Command(BaseCommand):
    help = "Create the demo supervisor, agents, queue and sandbox number once, and print their passwords."

    def handle(self, *args, **options) -> None:
        credentials_file = settings.VAR_DIR / "demo-credentials.txt"
        passwords = demo_data_create()
        if not passwords:
            where = f" (saved in {credentials_file})" if credentials_file.exists() else ""
            self.stdout.write(f"Demo data exists already{where}.")
            return
        lines = [f"{username:<12} {password}" for username, password in passwords.items()]
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text("\n".join(lines) + "\n")
        os.chmod(credentials_file, 0o600)
        self.stdout.write(self.style.SUCCESS("Demo data created. Sign in at /login/ with:"))
        for line in lines:
            self.stdout.write(f"  {line}")
        self.stdout.write(f"(also saved in {credentials_file})")
