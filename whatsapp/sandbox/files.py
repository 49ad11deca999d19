"""Small files simulated customers send: a photo, a voice note, a document. Made here, in memory, from
nothing downloaded: a PNG drawn pixel by pixel, a customer's recorded phrase encoded as WhatsApp's
voice notes are (Ogg Opus), a one-page PDF."""

import io
import struct
import zlib
from pathlib import Path

import av

AUDIO_DIR = Path(__file__).resolve().parent / "audio"
VOICE_NOTE_PHRASE = AUDIO_DIR / "customer_order.wav"


def photo_png(*, width: int = 96, height: int = 64) -> bytes:
    """A colour gradient as a PNG image (what a customer's photo of a broken part stands for)."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def voice_note_ogg(speech: Path = VOICE_NOTE_PHRASE) -> bytes:
    """A recorded phrase as a WhatsApp voice note: Opus in an Ogg file, mono, 48 kHz."""
    encoded = io.BytesIO()
    with av.open(str(speech)) as source, av.open(encoded, "w", format="ogg") as target:
        stream = target.add_stream("libopus", rate=48000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for frame in source.decode(audio=0):
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return encoded.getvalue()


def document_pdf(text: str = "Invoice 1042: 2 x replacement filter") -> bytes:
    """A one-page PDF showing one line of text."""
    line = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    content = f"BT /F1 14 Tf 48 760 Td ({line}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    document, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(document))
        document += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    table = len(document)
    document += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    document += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    document += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, table)
    return document
