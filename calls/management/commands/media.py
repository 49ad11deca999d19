import asyncio
import signal

from django.core.management.base import BaseCommand

from calls.bridge import keep_collections_short
from calls.media import CallMedia, MediaProcess


class Command(BaseCommand):
    help = "Run a media process: it answers and bridges the WebRTC legs of live calls."

    def handle(self, *args, **options) -> None:
        keep_collections_short()
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop_signal, stop.set)
        process = MediaProcess()
        calls = CallMedia(process=process)
        process.handlers = calls.handlers()
        stored = await calls.store_leftover_recordings()
        if stored:
            self.stdout.write(f"stored {stored} recording(s) a stopped media process left behind")
        try:
            await process.run(stop=stop)
        finally:
            await calls.close()
