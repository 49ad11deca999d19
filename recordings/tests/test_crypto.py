import io
import random

import hypothesis
import pytest
from hypothesis import strategies as st

from recordings.crypto import (
    CHUNK_SIZE,
    RecordingDamaged,
    SealedFile,
    UnknownKey,
    decrypt,
    encrypt,
    key_for,
    key_id_of,
    reencrypt,
)

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
SMALL_CHUNK = 16


@pytest.fixture(autouse=True)
def recording_keys(settings):
    settings.RECORDING_KEYS = {"old": OLD_KEY, "new": NEW_KEY}
    settings.RECORDING_KEY_ID = "old"


def audio(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def sealed(plaintext: bytes, **options) -> bytes:
    destination = io.BytesIO()
    encrypt(io.BytesIO(plaintext), destination, **options)
    return destination.getvalue()


def opened(sealed_recording: bytes) -> bytes:
    destination = io.BytesIO()
    decrypt(io.BytesIO(sealed_recording), len(sealed_recording), destination)
    return destination.getvalue()


def header_size(sealed_recording: bytes, plaintext_size: int, chunk_size: int) -> int:
    chunk_count = max(1, -(-plaintext_size // chunk_size))
    return len(sealed_recording) - plaintext_size - 16 * chunk_count


class Dribbling(io.RawIOBase):
    """A source that hands out at most a few bytes per read, as a pipe may."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 5))


@pytest.mark.parametrize(
    ("chunk_size", "size"),
    [
        (chunk_size, size)
        for chunk_size in (SMALL_CHUNK, CHUNK_SIZE)
        for size in (0, 1, chunk_size - 1, chunk_size, chunk_size + 1, 7 * chunk_size // 2)
    ],
)
def test_encrypt_round_trips_every_size(chunk_size, size):
    plaintext = audio(size)
    destination = io.BytesIO()

    written = encrypt(io.BytesIO(plaintext), destination, chunk_size=chunk_size)

    sealed_recording = destination.getvalue()
    recording = SealedFile(io.BytesIO(sealed_recording), len(sealed_recording))
    assert written == size
    assert recording.plaintext_size == size
    assert recording.key_id == "old"
    assert opened(sealed_recording) == plaintext


def test_encrypt_seals_an_empty_recording_as_one_empty_chunk():
    plaintext = b""

    sealed_recording = sealed(plaintext)

    assert len(sealed_recording) == header_size(sealed_recording, 0, CHUNK_SIZE) + 16
    assert opened(sealed_recording) == b""


def test_encrypt_reads_a_source_that_hands_out_little_at_a_time():
    plaintext = audio(3 * SMALL_CHUNK + 7)

    destination = io.BytesIO()

    written = encrypt(Dribbling(plaintext), destination, chunk_size=SMALL_CHUNK)

    assert written == len(plaintext)
    assert len(destination.getvalue()) == len(sealed(plaintext, chunk_size=SMALL_CHUNK))
    assert opened(destination.getvalue()) == plaintext


def test_encrypt_uses_the_current_key_unless_told():
    plaintext = audio(100)

    default = sealed(plaintext)
    named = sealed(plaintext, key_id="new")

    assert key_id_of(io.BytesIO(default)) == "old"
    assert key_id_of(io.BytesIO(named)) == "new"


def test_encrypt_with_an_unknown_key_writes_nothing():
    destination = io.BytesIO()

    with pytest.raises(UnknownKey):
        encrypt(io.BytesIO(audio(100)), destination, key_id="missing")

    assert destination.getvalue() == b""


def test_encrypt_hides_the_plaintext():
    pattern = bytes(range(256)) * 4  # 1 KiB, recognisable
    plaintext = b"RIFF\x24\x00\x10\x00WAVEfmt " + pattern * 200

    sealed_recording = sealed(plaintext)

    assert pattern[:16] not in sealed_recording
    assert b"WAVEfmt " not in sealed_recording


def test_encrypt_seals_the_same_recording_differently_each_time():
    plaintext = audio(1000)

    first, second = sealed(plaintext), sealed(plaintext)

    assert first != second
    assert opened(first) == opened(second) == plaintext


@hypothesis.settings(
    max_examples=200,
    deadline=None,
    # The keys the fixture sets are the same for every example.
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
@hypothesis.given(data=st.data())
def test_sealed_file_chunks_are_the_plaintext_slice(data):
    plaintext = data.draw(st.binary(max_size=120), label="plaintext")
    chunk_size = data.draw(st.integers(min_value=1, max_value=40), label="chunk_size")
    start = data.draw(st.integers(min_value=0, max_value=len(plaintext) + 5), label="start")
    end = data.draw(st.none() | st.integers(min_value=0, max_value=len(plaintext) + 5), label="end")
    sealed_recording = sealed(plaintext, chunk_size=chunk_size)
    recording = SealedFile(io.BytesIO(sealed_recording), len(sealed_recording))

    pieces = list(recording.chunks(start, end))

    assert b"".join(pieces) == plaintext[start:end]
    assert all(1 <= len(piece) <= chunk_size for piece in pieces)


def test_sealed_file_chunks_read_only_the_chunks_in_the_range():
    plaintext = audio(4 * SMALL_CHUNK)
    damaged = bytearray(sealed(plaintext, chunk_size=SMALL_CHUNK))
    third_chunk = header_size(damaged, len(plaintext), SMALL_CHUNK) + 2 * (SMALL_CHUNK + 16)
    damaged[third_chunk] ^= 0x01
    recording = SealedFile(io.BytesIO(damaged), len(damaged))

    start_of_recording = b"".join(recording.chunks(0, 2 * SMALL_CHUNK))

    assert start_of_recording == plaintext[: 2 * SMALL_CHUNK]
    with pytest.raises(RecordingDamaged, match="Chunk 2 of the recording fails its check"):
        b"".join(recording.chunks(2 * SMALL_CHUNK - 1, 2 * SMALL_CHUNK + 1))


def test_sealed_file_chunks_refuse_a_negative_range():
    sealed_recording = sealed(audio(10))
    recording = SealedFile(io.BytesIO(sealed_recording), len(sealed_recording))

    with pytest.raises(ValueError):
        recording.chunks(-1)


def test_decrypt_detects_a_flipped_byte_anywhere():
    sealed_recording = sealed(audio(int(3.5 * SMALL_CHUNK)), chunk_size=SMALL_CHUNK)
    undetected = []

    for position in range(len(sealed_recording)):
        damaged = bytearray(sealed_recording)
        damaged[position] ^= 0x40
        try:
            opened(bytes(damaged))
        except RecordingDamaged:
            continue
        undetected.append(position)

    assert undetected == []


def test_decrypt_detects_a_dropped_last_chunk():
    plaintext = audio(int(3.5 * SMALL_CHUNK))
    sealed_recording = sealed(plaintext, chunk_size=SMALL_CHUNK)
    last_chunk_size = SMALL_CHUNK // 2 + 16

    truncated = sealed_recording[:-last_chunk_size]

    with pytest.raises(RecordingDamaged, match="Chunk 2 of the recording fails its check"):
        opened(truncated)


def test_sealed_file_detects_a_recording_cut_short_anywhere():
    sealed_recording = sealed(audio(int(3.5 * SMALL_CHUNK)), chunk_size=SMALL_CHUNK)
    undetected = []

    for length in range(len(sealed_recording)):
        try:
            SealedFile(io.BytesIO(sealed_recording[:length]), length)
        except RecordingDamaged:
            continue
        undetected.append(length)

    assert undetected == []


def test_decrypt_detects_a_recording_extended_past_its_end():
    plaintext = audio(2 * SMALL_CHUNK)
    sealed_recording = sealed(plaintext, chunk_size=SMALL_CHUNK)
    last_chunk = sealed_recording[-(SMALL_CHUNK + 16) :]

    extended = sealed_recording + last_chunk

    with pytest.raises(RecordingDamaged):
        opened(extended)


def test_decrypt_detects_two_swapped_chunks():
    plaintext = audio(int(3.5 * SMALL_CHUNK))
    sealed_recording = sealed(plaintext, chunk_size=SMALL_CHUNK)
    header_end = header_size(sealed_recording, len(plaintext), SMALL_CHUNK)
    first = sealed_recording[header_end : header_end + SMALL_CHUNK + 16]
    second = sealed_recording[header_end + SMALL_CHUNK + 16 : header_end + 2 * (SMALL_CHUNK + 16)]

    swapped = sealed_recording[:header_end] + second + first + sealed_recording[header_end + 2 * len(first) :]

    assert len(swapped) == len(sealed_recording)
    with pytest.raises(RecordingDamaged, match="Chunk 0 of the recording fails its check"):
        opened(swapped)


def test_decrypt_refuses_what_is_not_a_sealed_recording():
    wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(100)

    with pytest.raises(RecordingDamaged, match="Not a sealed recording"):
        opened(wav)


def test_sealed_file_with_an_unknown_key_id_raises_unknown_key():
    sealed_recording = sealed(audio(100))
    renamed = sealed_recording.replace(b"\x03old", b"\x03odd", 1)

    with pytest.raises(UnknownKey, match="No recording key 'odd' is configured"):
        SealedFile(io.BytesIO(renamed), len(renamed))


def test_key_for_returns_the_configured_key():
    key = key_for("new")

    assert key == NEW_KEY


def test_key_for_an_absent_key_raises_unknown_key():
    with pytest.raises(UnknownKey, match="No recording key 'missing' is configured"):
        key_for("missing")


def test_reencrypt_moves_a_recording_to_the_new_key(settings):
    plaintext = audio(int(3.5 * SMALL_CHUNK))
    original = sealed(plaintext, key_id="old", chunk_size=SMALL_CHUNK)
    settings.RECORDING_KEY_ID = "new"
    destination = io.BytesIO()

    reencrypt(io.BytesIO(original), len(original), destination)

    rotated = destination.getvalue()
    assert key_id_of(io.BytesIO(rotated)) == "new"
    assert opened(rotated) == plaintext
    settings.RECORDING_KEYS = {"new": NEW_KEY}
    assert opened(rotated) == plaintext
    assert key_id_of(io.BytesIO(original)) == "old"
    with pytest.raises(UnknownKey, match="No recording key 'old' is configured"):
        opened(original)


def test_reencrypt_of_a_damaged_recording_raises_recording_damaged():
    original = bytearray(sealed(audio(int(3.5 * SMALL_CHUNK)), chunk_size=SMALL_CHUNK))
    original[header_size(original, int(3.5 * SMALL_CHUNK), SMALL_CHUNK)] ^= 0x01

    with pytest.raises(RecordingDamaged, match="Chunk 0 of the recording fails its check"):
        reencrypt(io.BytesIO(original), len(original), io.BytesIO(), key_id="new")


def test_key_id_of_reads_only_the_header():
    sealed_recording = sealed(audio(3 * CHUNK_SIZE), key_id="new")

    key_id = key_id_of(io.BytesIO(sealed_recording[:64]))

    assert key_id == "new"
