"""A call's page (audio, transcript, summary, what happened) and its recording, streamed decrypted."""

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_safe

from calls.models import Call
from core.access import viewer_of
from recordings import crypto
from recordings.models import Recording
from recordings.selectors import call_review
from recordings.services import recording_opened

logger = logging.getLogger(__name__)


def _visible_call(request, pk: int) -> Call:
    call = get_object_or_404(
        Call.objects.select_related("contact", "agent__user", "queue", "business_number"), pk=pk
    )
    if not viewer_of(request).may_see_call(call):
        raise PermissionDenied("Only the agent who took the call and supervisors may open it.")
    return call


@login_required
@require_GET
def call_page(request, pk: int):
    """The call as a supervisor reviews it: the recording with its transcript following playback,
    the summary card, and the call's events; the work after the call shows its progress live."""
    call = _visible_call(request, pk)
    return render(request, "recordings/call.html", call_review(call=call, viewer=viewer_of(request)))


@login_required
@require_safe
def call_recording(request, pk: int):
    """The call's recording (Ogg Opus, or WAV when made by an earlier version), decrypted as it
    streams, to the agent who took the call and to supervisors (403 for anyone else). One byte range
    is served (206), so players can seek; a range that cannot be satisfied is 416, and one that is
    not understood is ignored (RFC 9110 §14.2)."""
    call = _visible_call(request, pk)
    return recording_response(request, get_object_or_404(Recording.objects.select_related("call"), call=call))


def recording_response(request, recording: Recording) -> HttpResponse:
    """The recording as it is stored (Ogg Opus or WAV), decrypted as it streams, in the range asked for
    (206) or whole."""
    call = recording.call
    files = contextlib.ExitStack()  # open until the response is closed, read to its end or not
    try:
        opened = files.enter_context(recording_opened(recording))
    except FileNotFoundError as error:
        files.close()
        logger.error("call %s: the recording %s is missing", call.pk, recording.file.name)
        raise Http404("The recording's file is missing.") from error
    except crypto.RecordingDamaged as error:
        files.close()
        logger.error("call %s: the recording %s cannot be opened: %s", call.pk, recording.file.name, error)
        return HttpResponse(
            "The recording cannot be opened (damaged, or its key is no longer configured).",
            status=503,
            content_type="text/plain",
        )
    size = opened.plaintext_size
    start, end, status = 0, size, 200
    span = _byte_range(request.headers.get("Range", ""), size)
    if span == UNSATISFIABLE:
        files.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if span is not None:
        (start, end), status = span, 206
    if request.method == "HEAD":
        files.close()
        body = _SyncDecrypted(contextlib.ExitStack(), iter(()))
    elif isinstance(request, ASGIRequest):
        body = _AsyncDecrypted(files, _checked(opened.chunks(start, end), call.pk, recording))
    else:
        body = _SyncDecrypted(files, _checked(opened.chunks(start, end), call.pk, recording))
    media_type = Recording.MEDIA_TYPES.get(recording.format, "application/octet-stream")
    response = StreamingHttpResponse(body, status=status, content_type=media_type)
    response["Content-Length"] = str(end - start)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    extension = Recording.EXTENSIONS.get(recording.format, "audio")
    response["Content-Disposition"] = f'inline; filename="call-{call.pk}.{extension}"'
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    return response


def _checked(chunks: Iterator[bytes], call_id: int, recording: Recording) -> Iterator[bytes]:
    try:
        yield from chunks
    except crypto.RecordingDamaged as error:  # the response is cut short: the player shows an error
        logger.error("call %s: the recording %s is damaged: %s", call_id, recording.file.name, error)


class _Decrypted:
    """A recording's bytes as the response sends them; its files closed with the response."""

    def __init__(self, files: contextlib.ExitStack, chunks: Iterator[bytes]) -> None:
        self.files, self.chunks = files, chunks

    def close(self) -> None:
        self.files.close()


class _SyncDecrypted(_Decrypted):
    def __iter__(self) -> Iterator[bytes]:
        return self.chunks


class _AsyncDecrypted(_Decrypted):
    """Under ASGI: decrypted one chunk at a time on a worker thread. (Django reads a synchronous
    iterator whole, into memory, before it sends an ASGI response's first byte.)"""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._read()

    async def _read(self) -> AsyncIterator[bytes]:
        while (chunk := await sync_to_async(next, thread_sensitive=False)(self.chunks, None)) is not None:
            yield chunk


UNSATISFIABLE = (-1, -1)
RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})", re.ASCII)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The `Range` header's one byte range as [start, end) within `size`; UNSATISFIABLE when it
    lies beyond the recording; None when there is none, or it is not one valid byte range (the
    whole recording is served then)."""
    match = RANGE.fullmatch(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last `last` bytes
        length = int(last)
        return (size - min(length, size), size) if length and size else UNSATISFIABLE
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range: ignored
    if start >= size:
        return UNSATISFIABLE
    return start, min(size, int(last) + 1) if last else size
