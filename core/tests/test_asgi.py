"""Request bodies capped as they arrive, before Django reads them (core.asgi)."""

import asyncio
import json

from config.asgi import application

CHUNKS = [b"[" + b"1," * 50_000] * 30  # 3 MB of a JSON body, in chunks of 100 kB


async def post(*, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[dict, list[dict], int]:
    """POSTs to the API through the web server's application; the answer, and how many chunks of
    the body the server took."""
    taken = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal taken
        if taken == len(chunks):
            await asyncio.sleep(3600)  # nothing more is sent
        taken += 1
        return {"type": "http.request", "body": chunks[taken - 1], "more_body": taken < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/v1/calls/", "raw_path": b"/api/v1/calls/", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    await asyncio.wait_for(application(scope, receive, send), timeout=20)
    start = sent[0]
    return start, sent, taken


async def test_body_declared_beyond_the_limit_is_413_unread(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000

    start, sent, taken = await post(headers=[(b"content-length", b"20000000")], chunks=CHUNKS)

    assert start["status"] == 413
    assert json.loads(sent[1]["body"]) == {
        "code": "request_too_large",
        "detail": "The request body is larger than the limit of 1000000 bytes.",
    }
    assert taken == 0


async def test_body_sent_without_a_length_is_read_no_further_than_the_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000_000

    start, sent, taken = await post(headers=[], chunks=CHUNKS)

    assert start["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "request_too_large"
    assert taken == 10  # 10 chunks of 100,001 bytes pass the limit; none is read after
