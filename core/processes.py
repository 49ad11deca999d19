"""Helpers for the long-running processes of the Procfile."""

import signal
import sys


def wait_for_stop() -> None:
    """Idle until SIGINT or SIGTERM, then exit cleanly.

    For a Procfile process with nothing to do in this configuration: honcho stops every process
    when one exits, so such a process must stay up until the others are stopped.
    """
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    while True:
        signal.pause()
