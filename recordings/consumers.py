"""A call's page listens here: the progress of the work after the call, and its summary once ready."""

from channels.db import database_sync_to_async

from calls.models import Call
from core.access import viewer_of_user
from core.consumers import JsonSocketConsumer

CLOSE_FORBIDDEN = 4403


def _may_follow(user, call_id: int) -> bool:
    call = Call.objects.select_related("agent").filter(pk=call_id).first()
    return call is not None and viewer_of_user(user).may_see_call(call)


class CallPageConsumer(JsonSocketConsumer):
    group_name = ""

    async def connect(self) -> None:
        user = self.scope.get("user")
        call_id = self.scope["url_route"]["kwargs"]["pk"]
        if user is None or not await database_sync_to_async(_may_follow)(user, call_id):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group_name = f"call.{call_id}"
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "error", "code": "read_only", "message": "The call page only listens."})

    async def recording_progress(self, event: dict) -> None:
        await self.send_json(event)

    async def summary_ready(self, event: dict) -> None:
        await self.send_json(event)
