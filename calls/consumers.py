from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from calls.selectors import wallboard_snapshot

SUPERVISORS_GROUP = "supervisors"


class WallboardConsumer(AsyncJsonWebsocketConsumer):
    """Supervisors' live wallboard: a fresh snapshot whenever calls or agents change."""

    is_joined = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(SUPERVISORS_GROUP, self.channel_name)
        self.is_joined = True
        await self.accept()
        await self.send_json(await database_sync_to_async(wallboard_snapshot)())

    async def disconnect(self, code: int) -> None:
        if self.is_joined:
            await self.channel_layer.group_discard(SUPERVISORS_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "error", "code": "read_only", "message": "The wallboard only listens."})

    async def wallboard_changed(self, event: dict) -> None:
        await self.send_json(await database_sync_to_async(wallboard_snapshot)())
