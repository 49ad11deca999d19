"""Opus packets: their length read from the TOC byte (RFC 6716 §3.1), encoding once, decoding; and the
recordings' Ogg Opus files (RFC 7845): two mono streams, each packet as it was sent."""

import numpy as np
import pytest

from core.audio import (
    OPUS_RATE,
    OggOpusWriter,
    OpusDecoder,
    OpusPacketError,
    decode_channels,
    ogg_packets,
    ogg_readable_end,
    opus_encode_mono,
    opus_multistream_packet,
    opus_multistream_split,
    opus_packet_samples,
    opus_self_delimited,
)


@pytest.mark.parametrize(
    ("payload", "samples"),
    [
        (bytes([0 << 3 | 0, 1, 2]), 480),  # SILK narrowband 10 ms, one frame
        (bytes([3 << 3 | 0, 1]), 2_880),  # SILK narrowband 60 ms
        (bytes([9 << 3 | 1, 1, 2]), 1_920),  # SILK wideband 20 ms, two frames of equal size
        (bytes([13 << 3 | 2, 1, 2, 3]), 1_920),  # hybrid fullband 20 ms, two frames of different sizes
        (bytes([16 << 3 | 0]), 120),  # CELT 2.5 ms
        (bytes([31 << 3 | 0, 7]), 960),  # CELT fullband 20 ms: what browsers and WhatsApp send
        (bytes([31 << 3 | 3, 6, 1]), 5_760),  # code 3: six 20 ms frames, the longest allowed
        (bytes([16 << 3 | 3, 0x80 | 48, 1]), 5_760),  # code 3, VBR flag set: 48 frames of 2.5 ms
    ],
)
def test_packet_length_comes_from_the_toc_byte(payload, samples):
    assert opus_packet_samples(payload) == samples


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (b"", "empty"),
        (bytes([31 << 3 | 3]), "frame count"),
        (bytes([31 << 3 | 3, 0]), "not 0 ms"),
        (bytes([31 << 3 | 3, 7, 1]), "not 140 ms"),
        (bytes([3 << 3 | 3, 3, 1]), "not 180 ms"),
    ],
)
def test_a_payload_that_cannot_be_opus_is_refused(payload, problem):
    with pytest.raises(OpusPacketError, match=problem):
        opus_packet_samples(payload)


def test_encoded_once_then_decoded_the_audio_comes_back():
    rate = 48_000
    seconds = np.arange(rate) / rate
    tone = np.round(0.3 * 32767 * np.sin(2 * np.pi * 500 * seconds)).astype(np.int16)

    packets = opus_encode_mono(tone[:-100])  # not a whole number of 20 ms frames: the last is padded
    decoder = OpusDecoder()
    decoded = np.concatenate([decoder.decode(packet) for packet in packets])

    assert len(packets) == 50
    assert {opus_packet_samples(packet) for packet in packets} == {960}
    assert len(decoded) == rate
    # libopus delays its output by its look-ahead; past the first packet the level is the tone's.
    level = np.sqrt(np.mean(np.square(decoded[960:-960].astype(np.float64)))) / 32768
    assert 0.19 < level < 0.23
    assert opus_encode_mono(np.zeros(0, dtype=np.int16)) == ()


def test_a_packet_libopus_cannot_decode_is_an_error_and_the_stream_goes_on():
    decoder = OpusDecoder()
    (silence,) = opus_encode_mono(np.zeros(960, dtype=np.int16))

    with pytest.raises(OpusPacketError, match="cannot be decoded"):
        decoder.decode(bytes([31 << 3 | 3, 63]))

    assert np.array_equal(decoder.decode(silence), np.zeros(960, dtype=np.int16))


# --- Ogg Opus recordings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        bytes([31 << 3 | 0]) + bytes(range(100)),  # code 0, one frame
        bytes([31 << 3 | 0]) + bytes(300),  # code 0, a frame of two-byte length
        bytes([9 << 3 | 1]) + bytes(80),  # code 1, two frames of 40 bytes
        bytes([13 << 3 | 2, 10]) + bytes(35),  # code 2, frames of 10 and 25 bytes
        bytes([13 << 3 | 2, 253, 70]) + bytes(533 + 7),  # code 2, a first frame of 533 bytes
        bytes([16 << 3 | 3, 3]) + bytes(30),  # code 3, three frames of one size
        bytes([16 << 3 | 3, 0x80 | 3, 5, 7]) + bytes(21),  # code 3, three frames of 5, 7 and 9 bytes
        bytes([16 << 3 | 3, 0xC0 | 3, 255, 3, 5, 7]) + bytes(21 + 257),  # and 257 bytes of padding
        bytes([31 << 3 | 3, 0x40 | 2, 2]) + bytes(20 + 2),  # code 3, one size, padded
    ],
    ids=[
        "code0",
        "code0-long",
        "code1",
        "code2",
        "code2-long",
        "code3",
        "code3-vbr",
        "code3-vbr-pad",
        "code3-pad",
    ],
)
def test_a_packet_of_each_framing_goes_into_a_multistream_packet_and_comes_back_unchanged(payload):
    other = opus_encode_mono(np.zeros(960, np.int16))[0]

    joined = opus_multistream_packet([payload, other])

    assert opus_multistream_split(joined, streams=2) == [payload, other]
    assert len(opus_self_delimited(payload)) - len(payload) in (1, 2)  # one length more


@pytest.mark.parametrize(
    "payload",
    [
        bytes([9 << 3 | 1]) + bytes(81),  # code 1: two frames of one size cannot fill 81 bytes
        bytes([13 << 3 | 2, 50]) + bytes(10),  # code 2: a first frame longer than the packet
        bytes([16 << 3 | 3, 3]) + bytes(31),  # code 3 of one size: 31 bytes are not three frames
        bytes([16 << 3 | 3, 0x80 | 3, 200, 200]) + bytes(50),  # code 3: lengths longer than the packet
        bytes([16 << 3 | 3, 0x40 | 3]),  # code 3: ends inside its padding length
        bytes([31 << 3]) + bytes(1276),  # a frame over 1,275 bytes
    ],
)
def test_a_packet_whose_frames_do_not_add_up_is_refused_for_the_recording(payload):
    with pytest.raises(OpusPacketError):
        opus_self_delimited(payload)


def test_an_ogg_opus_file_holds_each_stream_as_a_channel_and_a_torn_last_page_is_cut_off(tmp_path):
    seconds = np.arange(OPUS_RATE) / OPUS_RATE
    tones = [np.round(8000 * np.sin(2 * np.pi * hz * seconds)).astype(np.int16) for hz in (440, 1000)]
    packets = [opus_multistream_packet(pair) for pair in zip(*map(opus_encode_mono, tones), strict=True)]
    path = tmp_path / "call.ogg"
    with path.open("wb") as file:
        writer = OggOpusWriter(file, channels=2)
        writer.write(packets[:25], samples_each=960)
        writer.write(packets[25:], samples_each=960, is_last=True)
    whole = path.stat().st_size
    with path.open("ab") as file:
        file.write(b"OggS\x00\x00" + bytes(40))  # a page its writer did not finish

    rate, samples = decode_channels(path)
    with path.open("rb") as file:
        end, granule = ogg_readable_end(file)
        recorded = list(ogg_packets(file))

    assert (rate, samples.shape) == (OPUS_RATE, (OPUS_RATE, 2))
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64), axis=0))
    assert list(np.argmax(spectrum, axis=0)) == [440, 1000]  # left the first stream, right the second
    assert (end, granule) == (whole, OPUS_RATE)
    assert recorded[0][:8] == b"OpusHead" and recorded[1][:8] == b"OpusTags" and recorded[2:] == packets
