"""ASGI entry point: Django for HTTP (Meta's POSTed deliveries straight to the intake),
Channels consumers for WebSockets.

WebSockets are authenticated by the Django session (the call widget's by its own session:
integrations.consumers) and accepted only from the site's own origins (scheme, host and port:
core.asgi).
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from core.asgi import body_limit, same_origin_only  # noqa: E402
from whatsapp.asgi import webhook_router  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Meta's deliveries take a short way past Django's middleware (whatsapp.asgi); every other
        # request's body is capped as it arrives (core.asgi).
        "http": webhook_router(body_limit(django_asgi_application)),
        "websocket": same_origin_only(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Everything loaded at start-up lives as long as the process: keep it out of the cyclic garbage
# collector's way, so that full collections stay short. bench/webhook_ack.py at 200 deliveries/s:
# p99 88-100 ms without this, 26-55 ms with it.
gc.freeze()
