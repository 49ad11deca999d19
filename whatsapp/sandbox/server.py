"""The sandbox's Graph API over HTTP (aiohttp), and `Sandbox`: the whole offline Meta in one object.

`Sandbox` runs on the caller's asyncio loop (the `sandbox` management command) or, through
`SandboxThread`, on a loop of its own beside a synchronous test.
"""

import asyncio
import json
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from whatsapp.sandbox.customers import Behaviour, SimulatedCustomer
from whatsapp.sandbox.meta import (
    MEDIA_DOWNLOAD_PATH,
    MediaUnavailable,
    Rules,
    SandboxError,
    SandboxMeta,
    invalid,
    keep_newest,
)
from whatsapp.sandbox.webhooks import DeliveryHabits, WebhookSender

API_VERSION = "v23.0"
T = TypeVar("T")


def _graph_error(error: SandboxError) -> web.Response:
    return web.json_response(error.body(), status=error.http_status)


@dataclass
class Fault:
    """One injected failure: the next request is delayed, answered with a 5xx, or both."""

    status: int | None = 503
    delay_s: float = 0.0


@dataclass
class Traffic:
    """What the sandbox's Graph API saw, and the failures queued for its next requests."""

    requests: list[tuple[str, str]] = field(default_factory=list)
    faults: deque[Fault] = field(default_factory=deque)


def build_app(meta: SandboxMeta, *, token: str, traffic: Traffic, app_secret: str = "") -> web.Application:
    def is_app_token(request: web.Request) -> bool:
        """An app access token (`<APP_ID>|<APP_SECRET>`) on the app's own subscriptions edge."""
        node = request.match_info.get("node", "")
        return (
            bool(app_secret)
            and request.path.endswith("/subscriptions")
            and request.headers.get("Authorization") == f"Bearer {node}|{app_secret}"
        )

    @web.middleware
    async def graph_errors(request: web.Request, handler) -> web.StreamResponse:
        traffic.requests.append((request.method, request.path))
        keep_newest(traffic.requests)
        if traffic.faults:
            fault = traffic.faults.popleft()
            await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                return web.json_response(
                    {"error": {"message": "Service temporarily unavailable", "code": 2}}, status=fault.status
                )
        if request.headers.get("Authorization") != f"Bearer {token}" and not is_app_token(request):
            return _graph_error(SandboxError(190, "Invalid OAuth access token", http_status=401))
        try:
            return await handler(request)
        except SandboxError as error:
            return _graph_error(error)

    async def body_of(request: web.Request) -> Any:
        try:
            return await request.json(loads=json.loads)
        except (ValueError, UnicodeDecodeError):
            raise invalid("the body is not valid JSON") from None

    async def calls(request: web.Request) -> web.Response:
        return web.json_response(meta.calls_action(request.match_info["node"], await body_of(request)))

    async def messages(request: web.Request) -> web.Response:
        return web.json_response(meta.messages_send(request.match_info["node"], await body_of(request)))

    async def settings_get(request: web.Request) -> web.Response:
        return web.json_response(meta.settings_get(request.match_info["node"]))

    async def settings_post(request: web.Request) -> web.Response:
        return web.json_response(meta.settings_update(request.match_info["node"], await body_of(request)))

    async def call_permissions(request: web.Request) -> web.Response:
        wa_id = request.query.get("user_wa_id") or request.query.get("recipient")
        return web.json_response(meta.call_permissions_get(request.match_info["node"], wa_id))

    async def message_templates(request: web.Request) -> web.Response:
        return web.json_response(meta.template_create(request.match_info["node"], await body_of(request)))

    async def message_templates_list(request: web.Request) -> web.Response:
        query = request.query
        return web.json_response(
            meta.templates_list(
                request.match_info["node"], limit=query.get("limit"), after=query.get("after")
            )
        )

    async def node_get(request: web.Request) -> web.Response:
        node = request.match_info["node"]
        if node in meta.numbers:
            return web.json_response(meta.phone_number_get(node, request.query.get("fields")))
        base_url = f"{request.scheme}://{request.host}"
        return web.json_response(meta.media_get(node, base_url=base_url))

    async def subscribed_apps(request: web.Request) -> web.Response:
        return web.json_response(meta.subscribed_apps_get(request.match_info["node"]))

    async def app_subscriptions(request: web.Request) -> web.Response:
        if not is_app_token(request):  # Meta: "An app access token is required"
            raise SandboxError(102, "(#102) An app access token is required", http_status=400)
        return web.json_response(meta.app_subscriptions_get(request.match_info["node"]))

    async def media_download(request: web.Request) -> web.Response:
        query = request.query
        try:
            media = meta.media_download(
                media_id=query.get("mid"), expires=query.get("ext"), url_hash=query.get("hash")
            )
        except MediaUnavailable:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=media.content, content_type=media.mime_type.split(";")[0].strip())

    app = web.Application(middlewares=[graph_errors])
    app.router.add_get(MEDIA_DOWNLOAD_PATH, media_download)
    prefix = "/{version}/{node}"
    app.router.add_get(prefix, node_get)
    app.router.add_post(f"{prefix}/calls", calls)
    app.router.add_post(f"{prefix}/messages", messages)
    app.router.add_get(f"{prefix}/settings", settings_get)
    app.router.add_post(f"{prefix}/settings", settings_post)
    app.router.add_get(f"{prefix}/call_permissions", call_permissions)
    app.router.add_post(f"{prefix}/message_templates", message_templates)
    app.router.add_get(f"{prefix}/message_templates", message_templates_list)
    app.router.add_get(f"{prefix}/subscribed_apps", subscribed_apps)
    app.router.add_get(f"{prefix}/subscriptions", app_subscriptions)
    return app


class Sandbox:
    """Graph API server, webhook sender, rules and simulated customers, on one asyncio loop."""

    def __init__(
        self,
        *,
        webhook_url: str | None,
        app_secret: str,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        rules: Rules | None = None,
        habits: DeliveryHabits | None = None,
        record_dir: Path | None = None,
    ) -> None:
        self.sender = WebhookSender(url=webhook_url, app_secret=app_secret, habits=habits)
        self.meta = SandboxMeta(rules=rules, emit=self.sender.emit)
        self.token = token
        self.app_secret = app_secret
        self.host, self.port = host, port
        self.record_dir = record_dir
        self.customers: list[SimulatedCustomer] = []
        self.traffic = Traffic()
        self._runner: web.AppRunner | None = None

    @property
    def graph_url(self) -> str:
        return f"http://{self.host}:{self.port}/{API_VERSION}"

    async def start(self) -> None:
        await self.sender.start()
        self._runner = web.AppRunner(
            build_app(self.meta, token=self.token, traffic=self.traffic, app_secret=self.app_secret),
            access_log=None,
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for customer in self.customers:
            await customer.close()
        await self.sender.stop()
        if self._runner is not None:
            await self._runner.cleanup()

    def inject_faults(self, count: int, *, status: int | None = 503, delay_s: float = 0.0) -> None:
        """Make the next `count` Graph API requests fail (5xx) or hang (`delay_s`, status None)."""
        self.traffic.faults.extend(Fault(status=status, delay_s=delay_s) for _ in range(count))

    def add_number(
        self, *, phone_number_id: str, waba_id: str, display_phone_number: str, calling_enabled: bool = True
    ):
        return self.meta.add_number(
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            display_phone_number=display_phone_number,
            calling_enabled=calling_enabled,
        )

    def add_customer(
        self, *, wa_id: str, name: str, behaviour: Behaviour | None = None, **options: Any
    ) -> SimulatedCustomer:
        customer = SimulatedCustomer(
            meta=self.meta, wa_id=wa_id, name=name, behaviour=behaviour, record_dir=self.record_dir, **options
        )
        self.meta.add_customer(customer)
        self.customers.append(customer)
        return customer


class SandboxThread:
    """A `Sandbox` on its own loop in a background thread, for synchronous tests and scripts."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="sandbox", daemon=True)
        self._options = options
        self.sandbox: Sandbox | None = None

    def __enter__(self) -> Sandbox:
        self._thread.start()
        self.sandbox = self.run(self._start)
        return self.sandbox

    def __exit__(self, *exc_info: object) -> None:
        self.run(self.sandbox.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    async def _start(self) -> Sandbox:
        sandbox = Sandbox(**self._options)
        await sandbox.start()
        return sandbox

    def run(
        self, function: Callable[..., Awaitable[T]], *args: Any, timeout_s: float = 30, **kwargs: Any
    ) -> T:
        """Run `await function(*args, **kwargs)` on the sandbox's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(function(*args, **kwargs), self.loop).result(timeout_s)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the sandbox's loop (its state belongs to that loop)."""

        async def wrapper() -> T:
            return function(*args, **kwargs)

        return self.run(wrapper)
