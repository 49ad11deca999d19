import asyncio
import logging
import time

from channels.db import database_sync_to_async

from calls.selectors import wallboard_snapshot
from core.consumers import JsonSocketConsumer

logger = logging.getLogger(__name__)

SUPERVISORS_GROUP = "supervisors"
SNAPSHOT_DELAY_S = 0.25  # changes within this are shown together
CHARTS_EVERY_S = 5.0  # the charts of the day are drawn again at most this often


class WallboardConsumer(JsonSocketConsumer):
    """Supervisors' live wallboard: the floor (tiles) again soon after calls or agents change, and
    the charts of the day at most every CHARTS_EVERY_S (the last change is always drawn).

    A burst of callers changes the floor hundreds of times a second: the changes that arrive while
    a snapshot is due are answered by that one snapshot (SNAPSHOT_DELAY_S later), so a supervisor's
    screen costs a few queries a second, not a few per call.
    """

    is_joined = False
    charts_sent_at = 0.0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        self.due: dict[bool, asyncio.Task] = {}  # with charts or not → the snapshot to come
        await self.channel_layer.group_add(SUPERVISORS_GROUP, self.channel_name)
        self.is_joined = True
        await self.accept()
        await self.send_snapshot(with_charts=False)  # the page was drawn with its charts

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "due", {}).values():
            task.cancel()
        if self.is_joined:
            await self.channel_layer.group_discard(SUPERVISORS_GROUP, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        await self.send_json({"type": "error", "code": "read_only", "message": "The wallboard only listens."})

    async def wallboard_changed(self, event: dict) -> None:
        charts_in_s = self.charts_sent_at + CHARTS_EVERY_S - time.monotonic()
        for with_charts, delay_s in ((False, SNAPSHOT_DELAY_S), (True, max(SNAPSHOT_DELAY_S, charts_in_s))):
            task = self.due.get(with_charts)
            if task is None or task.done():
                self.due[with_charts] = asyncio.create_task(self.send_later(delay_s, with_charts=with_charts))

    # The inbox's waiting list (messaging.conversations), passed on as it comes.
    async def conversation_waiting(self, event: dict) -> None:
        await self.send_json(event)

    async def conversation_taken(self, event: dict) -> None:
        await self.send_json(event)

    async def send_later(self, delay_s: float, *, with_charts: bool) -> None:
        await asyncio.sleep(delay_s)
        try:
            await self.send_snapshot(with_charts=with_charts)
        except Exception:  # a task nobody awaits: say so, and the next change tries again
            logger.exception("wallboard snapshot not sent")

    async def send_snapshot(self, *, with_charts: bool) -> None:
        if with_charts:
            self.charts_sent_at = time.monotonic()
        await self.send_json(await database_sync_to_async(wallboard_snapshot)(with_charts=with_charts))
