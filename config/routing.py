from django.urls import path

from agents.consumers import AgentConsumer
from calls.consumers import WallboardConsumer
from integrations.consumers import WidgetConsumer
from recordings.consumers import CallPageConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/widget/", WidgetConsumer.as_asgi()),
    path("ws/wallboard/", WallboardConsumer.as_asgi()),
    path("ws/calls/<int:pk>/", CallPageConsumer.as_asgi()),
]
