"""What the offline model understands of plain text: words, yes and no, hesitation,
thanks, questions, numbers, picks ("the first one", "the cheapest") and the words
that tie a value to a role ("from Austin", "to Chicago", "in May").

Language knowledge only: nothing here knows any goal or tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD = re.compile(r"[a-z]+")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
EMAIL = re.compile(r"[^@\s<>(),;:\"']+@[^@\s<>(),;:\"']+\.[a-z]{2,}", re.I)
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


def wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


ACKS = wordset(
    "hi hello hey there thanks thank you thx yes yep yeah no nope ok okay sure please "
    "great good morning afternoon evening bye goodbye cool fine alright right"
)
_YES = wordset("yes y yep yeah yup sure ok okay alright please go ahead do it sounds good fine")
_YES_PHRASES = (
    "go ahead",
    "do it",
    "sounds good",
    "that works",
    "let's do",
    "book it",
    "why not",
    "try again",
    "retry",
)
_NO = wordset("no nope nah n")
_NO_PHRASES = ("don't", "do not", "not now", "no thanks", "cancel", "stop", "never mind")
_THANKS = ("thank", "thanks", "thx", "cheers", "appreciate")
_GREETINGS = wordset("hi hello hey morning afternoon evening greetings")
_HESITATION = (
    "not sure",
    "unsure",
    "don't know",
    "dont know",
    "do not know",
    "no idea",
    "dunno",
    "hmm",
    "hm",
    "um",
    "uh",
    "maybe",
    "i guess",
    "no clue",
    "whatever",
    "can't decide",
    "cannot decide",
)
_QUESTION_STARTS = wordset(
    "what which who whom whose when where why how is are was were do does did can could "
    "should would will shall may tell explain"
)
_LATITUDE = (
    "choose",
    "your choice",
    "up to you",
    "surprise me",
    "flexible",
    "any month",
    "any city",
    "you pick",
    "you decide",
)
STOPWORDS = wordset(
    "about above after again also always another anything because been before being "
    "below between both call calls could does doing done down during each either else "
    "every first from further give have having help here into just know last like make "
    "many more most much must need needs never next only other over please same should "
    "show some such tell than that their them then there these they thing things this "
    "those through under until used user users using very want wants well were what "
    "when where which while will with would your yours the and for you are can not "
    "any all but our out how why who its may get got was has had did let now one own "
    "too use yes yet way sorry thanks thank okay sure hello maybe really something "
    "find look take pick learn return returns give gives list lists back able "
    "two three four five six seven eight nine ten twelve dozen couple pair"
)
NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ],
        1,
    )
}
NUMBER_WORDS.update({"a": 1, "an": 1, "single": 1, "couple": 2, "pair": 2, "dozen": 12})
ORDINALS = {
    w: i
    for i, w in enumerate(
        [
            "first",
            "second",
            "third",
            "fourth",
            "fifth",
            "sixth",
            "seventh",
            "eighth",
            "ninth",
            "tenth",
        ],
        0,
    )
}
CUES: dict[str, tuple[str, ...]] = {
    "start": ("from", "out of", "leaving", "depart from", "departing from", "flying from"),
    "end": ("to", "into", "towards", "arriving in", "going to", "flying to"),
    "place": ("in", "at", "near", "around", "visit", "visiting"),
    "time": ("in", "on", "during", "for"),
}
"""Words right before a value that say which role it plays."""


def stem(word: str) -> str:
    """Simple plural stripping, so `events` meets `event` and `cities` meets `city`."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def content_words(text: str) -> set[str]:
    """The meaningful words of `text` (three letters or more, no stopwords), stemmed."""
    return {stem(w) for w in words(text) if len(w) >= 3 and w not in STOPWORDS}


def _has(text: str, phrases: tuple[str, ...]) -> bool:
    lowered = " " + " ".join(re.findall(r"[a-z']+", text.lower())) + " "
    return any(f" {p} " in lowered for p in phrases)


def is_yes(text: str) -> bool:
    """A plain agreement: "Yes", "sure, go ahead", "ok please"."""
    found = words(text)
    if not found or is_no(text):
        return False
    if all(w in _YES or w in ACKS for w in found) and any(w in _YES for w in found):
        return True
    # "Yes, send it to ana@example.com": a yes first, then what goes with it.
    return (found[0] in _YES and found[0] not in ("please", "fine")) or (
        _has(text, _YES_PHRASES) and len(found) <= 6
    )


def is_no(text: str) -> bool:
    found = words(text)
    if not found:
        return False
    if found[0] in _NO and (len(found) <= 4 or not is_question(text)):
        return True
    return _has(text, _NO_PHRASES) and len(found) <= 6


def is_thanks(text: str) -> bool:
    found = words(text)
    return bool(found) and any(w.startswith(_THANKS) for w in found) and len(found) <= 8


def is_greeting(text: str) -> bool:
    found = words(text)
    return bool(found) and all(w in ACKS for w in found) and any(w in _GREETINGS for w in found)


def is_small_talk(text: str) -> bool:
    found = words(text)
    return not found or all(w in ACKS for w in found)


def is_hesitation(text: str) -> bool:
    found = words(text)
    return bool(found) and len(found) <= 8 and _has(text, _HESITATION)


def is_question(text: str) -> bool:
    found = words(text)
    return "?" in text or (bool(found) and found[0] in _QUESTION_STARTS)


def grants_latitude(text: str) -> bool:
    """The user leaves a choice to the agent ("choose a different month", "surprise me")."""
    return _has(text, _LATITUDE)


def count_in(text: str) -> int | None:
    """A number written as a word ("two mugs", "a couple"), if any."""
    for w in words(text):
        if w in NUMBER_WORDS and w not in ("a", "an"):
            return NUMBER_WORDS[w]
    return None


@dataclass(frozen=True)
class Found:
    """A value found in text, and whether a cue word tied it to a role."""

    value: str
    start: int
    cue: str | None


def cue_before(text: str, start: int) -> str | None:
    """The role (`start`, `end`, `place`, `time`) the words before `start` give."""
    before = " " + " ".join(re.findall(r"[a-z']+", text[:start].lower())[-3:])
    for role in ("start", "end", "place", "time"):
        if any(before.endswith(" " + cue) for cue in CUES[role]):
            return role
    return None


_PROPER = re.compile(r"(?:[A-Z][\w.'-]*)(?:\s+(?:[A-Z][\w.'-]*|of|de|la|del))*")
_REGION = re.compile(r",\s*[A-Z]{2}\b.*$")


def phrase_after_cue(text: str, role: str) -> str | None:
    """A name right after a cue of `role`: "depart from Austin, TX" -> "Austin"."""
    for cue in sorted(CUES[role], key=len, reverse=True):
        for found in re.finditer(rf"(?<![\w']){re.escape(cue)}\s+", text, re.I):
            rest = text[found.end() :]
            name = _PROPER.match(rest)
            if name:
                return _REGION.sub("", name.group(0)).strip(" .,;!?")
    return None


def ordinal_in(text: str) -> int | None:
    """ "the first one" -> 0, "number 2" / "option 2" / "#2" -> 1, "the last one" -> -1."""
    lowered = text.lower()
    for w in words(lowered):
        if w in ORDINALS:
            return ORDINALS[w]
    numbered = re.search(r"(?:number|option|no\.?|#)\s*(\d{1,2})\b", lowered)
    if numbered:
        return int(numbered.group(1)) - 1
    if re.search(r"\b(?:the )?last (?:one|option)\b|\bthe last\b", lowered):
        return -1
    return None


SUPERLATIVES: dict[str, tuple[tuple[str, ...], bool]] = {
    "cheapest": (("price", "amount", "cost", "fare", "total"), False),
    "least expensive": (("price", "amount", "cost", "fare", "total"), False),
    "lowest price": (("price", "amount", "cost", "fare", "total"), False),
    "most expensive": (("price", "amount", "cost", "fare", "total"), True),
    "earliest": (("departure_time", "time", "date", "start"), False),
    "latest": (("departure_time", "time", "date", "start"), True),
    "shortest": (("duration", "minutes", "length"), False),
    "quickest": (("duration", "minutes"), False),
    "fastest": (("duration", "minutes"), False),
    "best": (("score", "rating", "rank"), True),
}
"""Words that pick an item by one of its fields: (field name parts, highest wins)."""


def superlative_in(text: str) -> tuple[tuple[str, ...], bool] | None:
    lowered = " ".join(words(text))
    for phrase, rule in SUPERLATIVES.items():
        if re.search(rf"\b{phrase}\b", lowered):
            return rule
    return None


WH_KEYS: dict[str, tuple[str, ...]] = {
    "when": ("date", "time"),
    "where": ("venue", "location", "city", "address"),
    "much": ("price", "amount", "total", "cost"),
    "cost": ("price", "amount", "total"),
    "link": ("url", "link"),
    "pay": ("url",),
}
"""Question words and the result fields they ask about ("when" -> a date or a time)."""
