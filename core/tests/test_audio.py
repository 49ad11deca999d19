"""Opus packets: their length read from the TOC byte (RFC 6716 §3.1), encoding once, decoding."""

import numpy as np
import pytest

from core.audio import OpusDecoder, OpusPacketError, opus_encode_mono, opus_packet_samples


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
