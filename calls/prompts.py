"""What customers hear from us: the recording notice and the closing message, per language.

Each prompt is a WAV file in ``static/audio/<kind>/<language>.wav`` with its words beside it in
``<language>.txt`` (the words are what a ConsentRecord keeps). A language without its own files
falls back to English, so a queue set to a language we have no recording for still plays one.

A caller (inbound) hears the notice of the queue's language, which thanks them and asks them to hold;
a customer we call (outbound) hears only that the call is recorded, in the language of their number's
country when we have it, then the agent.
"""

import functools
import wave
from dataclasses import dataclass
from pathlib import Path

from babel.languages import get_official_languages
from django.conf import settings

AUDIO_DIR = Path(settings.BASE_DIR) / "static" / "audio"
HOLD_AUDIO = AUDIO_DIR / "hold.wav"
FALLBACK_LANGUAGE = "en"
NOTICE = "notice"  # inbound: thanks for calling, the call may be recorded, please hold
OUTBOUND_NOTICE = "outbound_notice"  # a call we place: the call may be recorded, nothing more
CLOSING = "closing"
KINDS = (NOTICE, OUTBOUND_NOTICE, CLOSING)


@dataclass(frozen=True)
class Prompt:
    kind: str
    language: str  # the language of the files used, which may be the fallback
    path: Path
    text: str
    duration_s: float


@functools.cache
def prompt_for(kind: str, language: str) -> Prompt:
    """The prompt of ``kind`` (one of KINDS) in ``language``, else in English."""
    if kind not in KINDS:
        raise ValueError(f"no prompt of kind {kind!r}")
    for candidate in (language, FALLBACK_LANGUAGE):
        path = AUDIO_DIR / kind / f"{candidate}.wav"
        if candidate.isalnum() and path.is_file():
            with wave.open(str(path), "rb") as wav:
                duration_s = wav.getnframes() / wav.getframerate()
            text = path.with_suffix(".txt").read_text(encoding="utf-8").strip()
            return Prompt(kind=kind, language=candidate, path=path, text=text, duration_s=duration_s)
    raise FileNotFoundError(f"no {kind} prompt in {language!r} or {FALLBACK_LANGUAGE!r} under {AUDIO_DIR}")


def available_languages(kind: str = NOTICE) -> list[str]:
    return sorted(path.stem for path in (AUDIO_DIR / kind).glob("*.wav"))


def language_for_country(country: str, *, kind: str, default: str) -> str:
    """The language a customer of ``country`` (ISO 3166, e.g. "BR") most likely speaks among those
    ``kind`` is recorded in: the first of the country's official languages (CLDR's, in order, de facto
    ones included: "en" for the US) that has a recording; else ``default``."""
    recorded = set(available_languages(kind))
    official = get_official_languages(country.upper(), de_facto=True) if country.isalpha() else ()
    return next((language for language in official if language in recorded), default)
