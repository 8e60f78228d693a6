"""Natural-language identification.

With a fastText language-id model (``lid.176.bin`` / ``lid.176.ftz`` from fasttext.cc or
GlotLID's ``model.bin``; give its path in config) labels are that model's. Without one
(no network here, and no such model ships in a package) the documented fallback is
:class:`ScriptStopwordLid`: the Unicode script decides non-Latin languages (Cyrillic,
Greek, Arabic, Hebrew, Devanagari, Thai, Hangul, Kana, Han) and, for Latin script,
the share of tokens that are function words of each of 12 European languages picks
the language. It is reliable for the question the pipeline asks (is this page English,
or one of a few big languages?) on pages of a few hundred words, and reports ``und``
with score 0 when it cannot tell (too little text, or mostly symbols such as code).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Protocol

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_SAMPLE_CHARS = 4000

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the of and to in is that it for was on are as with be by this at from or have an not which but".split()),
    "de": frozenset("der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er".split()),
    "fr": frozenset("le la les de des et à un une du en est que qui pour dans ce il pas sur au par plus ne se".split()),
    "es": frozenset("el la de que y en los del se las por un para con no una su al es lo como más pero".split()),
    "it": frozenset("il di che la è e per un in non una sono della del le si con da gli al nel anche".split()),
    "pt": frozenset("o de que e do da em um para com não uma os no se na por mais as dos como mas ao".split()),
    "nl": frozenset("de en van het een in is dat op te zijn met voor niet aan er om ook als bij of".split()),
    "sv": frozenset("och i att det som en på är av för med till den har de inte om ett han men".split()),
    "pl": frozenset("i w nie na się z do że to jest o jak ale po co tak za od przez jego".split()),
    "tr": frozenset("ve bir bu da de için ile çok ne daha gibi ama olarak olan en ben var kadar".split()),
    "id": frozenset("yang dan di ini itu dengan untuk dari dalam tidak akan pada juga ke adalah ada".split()),
    "da": frozenset("og i at det er en til på som de med for af ikke den har et var der".split()),
}

_SCRIPT_LANG = {
    "CYRILLIC": "ru",
    "GREEK": "el",
    "ARABIC": "ar",
    "HEBREW": "he",
    "DEVANAGARI": "hi",
    "THAI": "th",
    "HANGUL": "ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CJK": "zh",
}


class LanguageIdentifier(Protocol):
    name: str

    def predict(self, text: str) -> tuple[str, float]: ...


def _script(ch: str) -> str:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return "OTHER"
    first = name.split(" ", 1)[0]
    if first == "LATIN":
        return "LATIN"
    if first in _SCRIPT_LANG:
        return first
    return "OTHER"


class ScriptStopwordLid:
    """Dependency-free fallback (see module docstring). Scores are in [0, 1]."""

    name = "script+stopwords"

    def __init__(self, min_words: int = 20) -> None:
        self.min_words = min_words

    def predict(self, text: str) -> tuple[str, float]:
        sample = text[:_SAMPLE_CHARS]
        letters = [c for c in sample if c.isalpha()]
        if len(letters) < 20:
            return "und", 0.0
        scripts = Counter(_script(c) for c in letters)
        script, count = scripts.most_common(1)[0]
        share = count / len(letters)
        if script != "LATIN":
            if "HIRAGANA" in scripts or "KATAKANA" in scripts:
                return "ja", share
            if script == "CYRILLIC" and any(c in sample for c in "іїєґ"):
                return "uk", share
            return _SCRIPT_LANG.get(script, "und"), share if script in _SCRIPT_LANG else 0.0
        words = [w.lower() for w in _WORD.findall(sample)]
        if len(words) < self.min_words:
            return "und", 0.0
        hits = {lang: sum(1 for w in words if w in sw) for lang, sw in STOPWORDS.items()}
        lang, best = max(hits.items(), key=lambda kv: (kv[1], kv[0] == "en"))
        if best == 0:
            return "und", 0.0
        second = sorted(hits.values())[-2]
        # Confidence: how much of the text is function words of the winner, and how far
        # ahead of the runner-up it is (English prose: ~25-40% of tokens are stopwords).
        density = min(1.0, best / len(words) / 0.25)
        margin = (best - second) / best
        return lang, round(share * density * (0.5 + 0.5 * margin), 4)


class FastTextLid:
    """A fastText language-id model (labels ``__label__en`` or GlotLID's ``__label__eng_Latn``)."""

    name = "fasttext"

    def __init__(self, path: str) -> None:
        from corpus.textcode.classifier import load_fasttext

        self.model = load_fasttext(path)
        self.path = path

    def predict(self, text: str) -> tuple[str, float]:
        sample = " ".join(text[:_SAMPLE_CHARS].split())
        if not sample:
            return "und", 0.0
        pairs = self.model.f.predict(sample + "\n", 1, 0.0, "replace")
        if not pairs:
            return "und", 0.0
        prob, label = pairs[0]
        return _normalize_label(label.removeprefix("__label__")), float(prob)


_ISO3 = {"eng": "en", "deu": "de", "fra": "fr", "spa": "es", "ita": "it", "por": "pt", "nld": "nl",
         "rus": "ru", "zho": "zh", "cmn": "zh", "jpn": "ja", "kor": "ko", "pol": "pl", "tur": "tr"}


def _normalize_label(label: str) -> str:
    base = label.split("_", 1)[0]
    return _ISO3.get(base, base)


def make_language_identifier(model_path: str | None = None) -> LanguageIdentifier:
    """fastText lid when ``model_path`` is given (must exist), else the documented fallback."""
    if model_path:
        import os

        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"lid_model_path {model_path!r} does not exist; download lid.176.bin from fasttext.cc "
                "or leave it empty to use the built-in script+stopword identifier"
            )
        return FastTextLid(model_path)
    return ScriptStopwordLid()
