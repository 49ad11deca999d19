from django.urls import path

from agents.consumers import AgentConsumer
from calls.consumers import WallboardConsumer

websocket_urlpatterns = [
    path("ws/agent/", AgentConsumer.as_asgi()),
    path("ws/wallboard/", WallboardConsumer.as_asgi()),
]
