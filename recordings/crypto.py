"""Call recordings sealed at rest: AES-256-GCM in chunks, so a recording can be played from any
point, is checked as it is read, and can be sealed again under a new key, never holding more than a
chunk or two in memory.

Format of a sealed recording (integers big endian):

    header   b"SBREC1"                   magic and version
             key id length               1 byte, 1 to 64
             key id                      ASCII; names the key in settings.RECORDING_KEYS
             salt                        16 random bytes
             nonce prefix                8 random bytes
             chunk size                  4 bytes: plaintext bytes per chunk, 1 B to 16 MiB (64 KiB)
    chunk i  AES-256-GCM of plaintext bytes [i * chunk size, (i + 1) * chunk size):
             ciphertext (as long as the plaintext) + 16-byte tag, with
               key              HKDF-SHA256(the named key, salt) - one key per recording
               nonce            nonce prefix + i (4 bytes)
               associated data  header + i (4 bytes) + final flag (1 byte: 1 on the last chunk, else 0)
    file     header + chunk 0 + chunk 1 + ... + chunk n-1

Every chunk but the last holds exactly chunk size bytes; the last holds 1 to chunk size bytes, and an
empty recording is one empty final chunk. So the sizes follow from the sealed size and the header
alone: n = ceil((sealed size - header size) / (chunk size + 16)), and the plaintext size is
sealed size - header size - 16 n.

What the layout guarantees: the header is in every chunk's associated data, so an altered header
fails the first chunk read; the index (in nonce and associated data) means chunks cannot be moved or
dropped; the final flag means a recording cannot be cut at a chunk boundary or extended past its end.
Opening a recording (SealedFile) checks its final chunk, so its key id and plaintext size are
authentic before any byte is served.

Why a key per recording: with the 8-byte random nonce prefix alone, recordings sealed with one key
would reach NIST's bound on a repeated nonce (2^-32, SP 800-38D) after about 90,000 recordings; a
key derived from a 16-byte salt removes that limit. This is the construction of Tink's AES-GCM-HKDF
streaming AEAD.
"""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MAGIC = b"SBREC1"
CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024  # a damaged header must not make a reader allocate gigabytes
MAX_KEY_ID_LENGTH = 64
SALT_SIZE = 16
NONCE_PREFIX_SIZE = 8
TAG_SIZE = 16
MAX_CHUNKS = 2**32  # the chunk index is 4 bytes of the nonce
FILE_KEY_INFO = b"switchboard recording file key"


class RecordingDamaged(Exception):
    """A sealed recording cannot be opened or fails its check: altered, cut short, not a sealed
    recording at all, or sealed with a key that is not configured."""


class UnknownKey(RecordingDamaged):
    """The key a recording names is not in settings.RECORDING_KEYS."""


def key_for(key_id: str) -> bytes:
    """The key `key_id` from settings.RECORDING_KEYS; UnknownKey if it is not there."""
    try:
        return settings.RECORDING_KEYS[key_id]
    except KeyError:
        raise UnknownKey(f"No recording key {key_id!r} is configured.") from None


@dataclass(frozen=True)
class _Header:
    key_id: str
    salt: bytes
    nonce_prefix: bytes
    chunk_size: int

    def to_bytes(self) -> bytes:
        key_id = self.key_id.encode("ascii")
        chunk_size = self.chunk_size.to_bytes(4, "big")
        return MAGIC + bytes([len(key_id)]) + key_id + self.salt + self.nonce_prefix + chunk_size

    def cipher(self) -> AESGCM:
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=self.salt, info=FILE_KEY_INFO)
        return AESGCM(hkdf.derive(key_for(self.key_id)))

    def nonce(self, index: int) -> bytes:
        return self.nonce_prefix + index.to_bytes(4, "big")


def _associated_data(header: bytes, index: int, *, is_final: bool) -> bytes:
    return header + index.to_bytes(4, "big") + (b"\x01" if is_final else b"\x00")


def _is_valid_key_id(key_id: str) -> bool:
    return key_id.isascii() and 1 <= len(key_id) <= MAX_KEY_ID_LENGTH


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    """`size` bytes, or fewer only at the end of `source` (a pipe or socket may hand out less per read)."""
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    remaining = size - len(data)
    while remaining and (part := source.read(remaining)):
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


def _read_header(source: BinaryIO) -> _Header:
    start = _read_exactly(source, len(MAGIC) + 1)
    if len(start) < len(MAGIC) + 1 or start[: len(MAGIC)] != MAGIC:
        raise RecordingDamaged("Not a sealed recording: the header does not start with the magic bytes.")
    key_id_length = start[-1]
    rest = _read_exactly(source, key_id_length + SALT_SIZE + NONCE_PREFIX_SIZE + 4)
    if len(rest) < key_id_length + SALT_SIZE + NONCE_PREFIX_SIZE + 4:
        raise RecordingDamaged("The recording is cut short in its header.")
    key_id = rest[:key_id_length].decode("ascii", errors="replace")
    if not _is_valid_key_id(key_id):
        raise RecordingDamaged("The recording's header holds no valid key id.")
    chunk_size = int.from_bytes(rest[-4:], "big")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise RecordingDamaged(f"The recording's header gives an impossible chunk size ({chunk_size}).")
    salt_end = key_id_length + SALT_SIZE
    return _Header(
        key_id=key_id,
        salt=rest[key_id_length:salt_end],
        nonce_prefix=rest[salt_end : salt_end + NONCE_PREFIX_SIZE],
        chunk_size=chunk_size,
    )


def _seal(pieces: Iterator[bytes], destination: BinaryIO, *, key_id: str | None, chunk_size: int) -> int:
    """Seal plaintext handed out as full chunks (the last one may be shorter) into `destination`."""
    key_id = settings.RECORDING_KEY_ID if key_id is None else key_id
    if not _is_valid_key_id(key_id):
        raise ValueError(f"A recording key id is 1 to {MAX_KEY_ID_LENGTH} ASCII characters, not {key_id!r}.")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"A chunk holds 1 to {MAX_CHUNK_SIZE} bytes, not {chunk_size}.")
    header = _Header(
        key_id=key_id,
        salt=os.urandom(SALT_SIZE),
        nonce_prefix=os.urandom(NONCE_PREFIX_SIZE),
        chunk_size=chunk_size,
    )
    cipher = header.cipher()  # before writing anything: an unknown key leaves the destination empty
    header_bytes = header.to_bytes()
    destination.write(header_bytes)
    written = 0
    index = 0
    piece = next(pieces, b"")
    while True:
        # One chunk of look-ahead tells whether this one is the last.
        following = next(pieces, None)
        is_final = following is None
        if index >= MAX_CHUNKS:
            raise ValueError("The recording is too long for its chunk size.")
        if not is_final and len(piece) != chunk_size:
            raise ValueError("Only the last chunk of a recording may be shorter than the chunk size.")
        associated_data = _associated_data(header_bytes, index, is_final=is_final)
        destination.write(cipher.encrypt(header.nonce(index), piece, associated_data))
        written += len(piece)
        if following is None:
            return written
        piece = following
        index += 1


def _pieces(source: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while piece := _read_exactly(source, chunk_size):
        yield piece
        if len(piece) < chunk_size:
            return


def encrypt(
    source: BinaryIO, destination: BinaryIO, *, key_id: str | None = None, chunk_size: int = CHUNK_SIZE
) -> int:
    """Read `source` to its end and write it sealed to `destination`, with the key `key_id`
    (None: settings.RECORDING_KEY_ID). Returns the number of plaintext bytes sealed.

    UnknownKey if the key is not configured (nothing is written then)."""
    return _seal(_pieces(source, chunk_size), destination, key_id=key_id, chunk_size=chunk_size)


class SealedFile:
    """A sealed recording opened for reading, from a seekable file object and its total size.

    Opening reads the header and checks the final chunk (RecordingDamaged, or UnknownKey, if that
    fails), so `key_id` and `plaintext_size` can be trusted; every other chunk is checked when read."""

    def __init__(self, sealed: BinaryIO, size: int):
        self._sealed = sealed
        self._size = size
        sealed.seek(0)
        self._header = _read_header(sealed)
        self._header_bytes = self._header.to_bytes()
        self._cipher = self._header.cipher()
        self.key_id: str = self._header.key_id
        self.chunk_size: int = self._header.chunk_size
        sealed_chunk_size = self.chunk_size + TAG_SIZE
        body_size = size - len(self._header_bytes)
        if body_size < TAG_SIZE:
            raise RecordingDamaged("The recording is cut short: it holds no chunk.")
        self._chunk_count = -(-body_size // sealed_chunk_size)
        final_chunk_size = body_size - (self._chunk_count - 1) * sealed_chunk_size
        if (self._chunk_count > 1 and final_chunk_size <= TAG_SIZE) or self._chunk_count > MAX_CHUNKS:
            raise RecordingDamaged("The recording's size does not fit its chunks: it was cut or extended.")
        self.plaintext_size: int = body_size - TAG_SIZE * self._chunk_count
        self._open_chunk(self._chunk_count - 1)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The plaintext bytes [start, end) (end None: to the end; an end past it is the end), in
        pieces of at most a chunk, decrypting and checking only the chunks they lie in.

        Iterating raises RecordingDamaged at the first chunk that fails its check."""
        if start < 0 or (end is not None and end < 0):
            raise ValueError(f"A range of a recording starts and ends at 0 or later, not [{start}, {end}).")
        end = self.plaintext_size if end is None else min(end, self.plaintext_size)
        return self._plaintext(start, end)

    def _plaintext(self, start: int, end: int) -> Iterator[bytes]:
        if start >= end:
            return
        for index in range(start // self.chunk_size, (end - 1) // self.chunk_size + 1):
            chunk_start = index * self.chunk_size
            yield self._open_chunk(index)[max(start - chunk_start, 0) : end - chunk_start]

    def _open_chunk(self, index: int) -> bytes:
        offset = len(self._header_bytes) + index * (self.chunk_size + TAG_SIZE)
        length = min(self.chunk_size + TAG_SIZE, self._size - offset)
        self._sealed.seek(offset)
        sealed_chunk = _read_exactly(self._sealed, length)
        if len(sealed_chunk) < length:
            raise RecordingDamaged("The recording is shorter than its stated size.")
        is_final = index == self._chunk_count - 1
        associated_data = _associated_data(self._header_bytes, index, is_final=is_final)
        try:
            return self._cipher.decrypt(self._header.nonce(index), sealed_chunk, associated_data)
        except InvalidTag:
            raise RecordingDamaged(f"Chunk {index} of the recording fails its check.") from None


def decrypt(source: BinaryIO, size: int, destination: BinaryIO) -> None:
    """Write the whole plaintext of the sealed recording `source` (of `size` bytes) to `destination`.

    On RecordingDamaged, `destination` holds the part that passed its check: discard it."""
    for piece in SealedFile(source, size).chunks():
        destination.write(piece)


def reencrypt(source: BinaryIO, size: int, destination: BinaryIO, *, key_id: str | None = None) -> None:
    """Open the sealed recording `source` (of `size` bytes) with its own key and write it sealed
    with `key_id` (None: settings.RECORDING_KEY_ID), with a fresh salt and nonce prefix and the same
    chunk size, to `destination`.

    On RecordingDamaged or UnknownKey, `destination` holds an unfinished recording: discard it and
    keep `source`."""
    recording = SealedFile(source, size)
    # Keeping the chunk size makes every piece of chunks() exactly one new chunk.
    _seal(recording.chunks(), destination, key_id=key_id, chunk_size=recording.chunk_size)


def key_id_of(source: BinaryIO) -> str:
    """The key id in the header of the sealed recording `source`, read from its current position
    (the start of a freshly opened file); the key need not be configured. RecordingDamaged if the
    header is not a valid one."""
    return _read_header(source).key_id
