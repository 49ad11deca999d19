"""Run the built-in Meta sandbox: a Graph API, simulated customers, and signed webhooks to us."""

import asyncio
import csv
import dataclasses
import signal
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.processes import wait_for_stop
from whatsapp.models import BusinessNumber
from whatsapp.sandbox.crowd import CrowdConfig, start_crowd
from whatsapp.sandbox.load import add_crowd, keep_calling, keep_chatting
from whatsapp.sandbox.meta import SandboxError
from whatsapp.sandbox.server import Sandbox


class Command(BaseCommand):
    help = (
        "Run the offline Meta sandbox for the sandbox business numbers, optionally with calls and "
        "scripted chats coming in."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--port", type=int, default=settings.SANDBOX_PORT)
        parser.add_argument("--customers", type=int, default=settings.SANDBOX_CUSTOMERS)
        parser.add_argument("--calls-per-minute", type=float, default=settings.SANDBOX_CALLS_PER_MINUTE)
        parser.add_argument("--chats-per-minute", type=float, default=settings.SANDBOX_CHATS_PER_MINUTE)
        parser.add_argument("--webhook-url", default=settings.SANDBOX_WEBHOOK_URL)
        parser.add_argument(
            "--crowd",
            type=int,
            default=settings.SANDBOX_CAMPAIGN_CROWD,
            metavar="N",
            help="Add a campaign crowd of N customers who react to the templates sent to them.",
        )
        for crowd_field in dataclasses.fields(CrowdConfig):
            if crowd_field.name in ("size", "regions"):
                continue
            parser.add_argument(
                f"--crowd-{crowd_field.name.replace('_', '-')}",
                type=int if crowd_field.type is int else float,
                default=crowd_field.default,
                help=f"The campaign crowd's {crowd_field.name} (default %(default)s).",
            )
        parser.add_argument(
            "--crowd-regions",
            default=",".join(CrowdConfig.regions),
            help="Countries of the campaign crowd's numbers, comma-separated (default %(default)s).",
        )
        parser.add_argument(
            "--crowd-list",
            type=Path,
            help="Write the campaign crowd's numbers and names to this CSV file (to import as recipients).",
        )
        parser.add_argument(
            "--only-when-configured",
            action="store_true",
            help="Idle unless WHATSAPP_GRAPH_URL points at this sandbox (for the Procfile).",
        )

    def handle(self, *args, **options) -> None:
        graph_url = f"http://127.0.0.1:{options['port']}/v23.0"
        if options["only_when_configured"] and settings.WHATSAPP_GRAPH_URL.rstrip("/") != graph_url:
            self.stdout.write(
                f"WHATSAPP_GRAPH_URL is {settings.WHATSAPP_GRAPH_URL}: the sandbox is not needed."
            )
            return wait_for_stop()
        options["crowd_config"] = self._crowd_config(options)
        numbers = list(BusinessNumber.objects.filter(is_sandbox=True))
        if not numbers:
            raise CommandError("No sandbox business number: run `manage.py seed_demo` or add one in admin.")
        asyncio.run(self._run(numbers, self._approved_templates(numbers), options))

    def _crowd_config(self, options: dict) -> CrowdConfig | None:
        if options["crowd"] <= 0:
            return None
        tuned = {
            crowd_field.name: options[f"crowd_{crowd_field.name}"]
            for crowd_field in dataclasses.fields(CrowdConfig)
            if crowd_field.name not in ("size", "regions")
        }
        regions = tuple(
            region.strip().upper() for region in options["crowd_regions"].split(",") if region.strip()
        )
        try:
            return CrowdConfig(size=options["crowd"], regions=regions, **tuned)
        except ValueError as error:
            raise CommandError(f"Campaign crowd: {error}") from None

    def _approved_templates(self, numbers: list[BusinessNumber]) -> list[dict]:
        """Meta keeps an account's templates; the sandbox forgets them when it stops. So it starts
        with the templates the product holds as approved for its accounts (the demo's, and any
        entered in admin), in Meta's creation format. Read by the model's name: the sandbox plays
        Meta and imports none of the product's apps above `whatsapp`."""
        template_model = apps.get_model("messaging", "Template")
        approved = template_model.objects.filter(
            waba_id__in={number.waba_id for number in numbers}, status="APPROVED"
        )
        return [
            {
                "waba_id": template.waba_id,
                "body": {
                    "name": template.name,
                    "language": template.language,
                    "category": template.category.upper(),
                    "components": template.components,
                },
            }
            for template in approved
        ]

    async def _run(self, numbers: list[BusinessNumber], templates: list[dict], options: dict) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, stop.set)
        sandbox = Sandbox(
            webhook_url=options["webhook_url"],
            app_secret=settings.WHATSAPP_APP_SECRET,
            token=settings.WHATSAPP_TOKEN,
            port=options["port"],
        )
        await sandbox.start()
        for number in numbers:
            sandbox.add_number(
                phone_number_id=number.phone_number_id,
                waba_id=number.waba_id,
                display_phone_number=number.display_phone_number,
            )
            # Meta says of the number what the back office keeps of it (its onboarding page reads it).
            sandbox.meta.number_profile_set(
                number.phone_number_id,
                messaging_limit_tier=number.messaging_limit_tier,
                is_on_biz_app=number.is_coexistence,
                is_official_business_account=number.verification_status == "verified",
            )
        for template in templates:
            try:
                sandbox.meta.template_create(template["waba_id"], template["body"])
            except SandboxError as error:
                self.stderr.write(f"Template {template['body']['name']} not registered: {error}")
        crowd = add_crowd(sandbox, count=options["customers"])
        # Chats come from customers of the countries the business may not call (settings) too.
        red_list = frozenset(settings.OUTBOUND_BLOCKED_COUNTRIES)
        red_listed = []
        if options["chats_per_minute"] > 0:
            red_listed = add_crowd(sandbox, count=min(2, len(red_list)), seed=4, regions=sorted(red_list))
        campaign_crowd = start_crowd(sandbox, options["crowd_config"]) if options["crowd_config"] else None
        if campaign_crowd is not None:
            self.stdout.write(f"Campaign crowd of {len(campaign_crowd.members)}: {campaign_crowd.config}")
            if options["crowd_list"]:
                with options["crowd_list"].open("w", newline="") as listing:
                    writer = csv.writer(listing)
                    writer.writerow(["wa_id", "name"])
                    writer.writerows([member.wa_id, member.name] for member in campaign_crowd.members)
        self.stdout.write(
            f"Sandbox Graph API on {sandbox.graph_url} for {len(numbers)} number(s), {len(templates)} "
            f"template(s), {len(crowd)} customers (and {len(red_listed)} of countries not called); "
            f"webhooks to {options['webhook_url']}; "
            f"{options['calls_per_minute']:g} calls and {options['chats_per_minute']:g} chats per minute."
        )
        number_ids = [number.phone_number_id for number in numbers]
        crowd_at_work = [stop.wait()]
        if options["calls_per_minute"] > 0:
            crowd_at_work.append(
                keep_calling(crowd, number_ids, calls_per_minute=options["calls_per_minute"], stop=stop)
            )
        if options["chats_per_minute"] > 0:
            crowd_at_work.append(
                keep_chatting(
                    crowd + red_listed,
                    number_ids,
                    chats_per_minute=options["chats_per_minute"],
                    red_list_regions=red_list,
                    stop=stop,
                )
            )
        try:
            await asyncio.gather(*crowd_at_work)
        finally:
            if campaign_crowd is not None:
                campaign_crowd.stop()
                self.stdout.write(f"Campaign crowd reactions: {dict(campaign_crowd.counts())}")
            await sandbox.stop()
