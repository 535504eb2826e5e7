"""Meaning flips: two questions that share almost every word but ask different things.

An embedding puts "Is the patient allergic to penicillin?" and "Is the patient *not* allergic to
penicillin?" next to each other; so would any score built on word overlap. One such hit is the
incident users remember, so the semantic cache does not weigh these differences, it vetoes them:
:func:`contrast` names the kind of flip between two questions, or None.

* ``negation``: a different number of negations (not, n't, no, never, without, ...);
  ``negation_scope``: the same negations on different words ("stretch but not warm up");
* ``antonym``: a word only one question has, whose opposite only the other has (enable /
  disable, include / exclude), from the shipped list ``costkit/data/antonyms.txt``, or the same
  word with a negating prefix (install / uninstall, legal / illegal);
* ``role_swap``: the same words with the arguments of from / to / than / into ... exchanged, or
  two words swapped around a verb ("does stress cause insomnia" / "does insomnia cause stress");
* ``number``: different numbers (digits and number words; "a cup" and "one cup" agree);
* ``unit``: different units of measure when both name one (``costkit/data/units.txt``);
* ``date``: different days, months, holidays or relative dates when both name one;
* ``entity``: different names from ``costkit/data/entities.txt`` (countries, cities, states,
  languages, platforms, companies), or different capitalized names.

Rules, not a model: they are the same at calibration and lookup time, cost microseconds, and say
why. Their price is a few paraphrases that differ in one of these ways ("a day" / "per week") and
are then answered by the provider.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from importlib import resources

import attrs

_WORD = re.compile(r"[a-z]+[+#]+|[a-z0-9]+(?:[.'][a-z0-9]+)*|[$€¥%°]")
_CAP = re.compile(r"\b[A-Z][a-zA-Z]+")


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


NEGATORS = _set("not no never without none nobody nothing neither nor cannot noone nowhere")
_CONTRACTIONS = {"can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not", "ain't": "is not"}
_NT = re.compile(r"\b([a-z]+)n't\b")
_NOT_A_NEGATION = re.compile(r"\b(?:or not|why not|if not|or no)\b")  # "is it safe, why or why not?"
_DETERMINERS = _set("the a an my your our their his her its this that these those some any")
_FUNCTION = _set(
    "a an the of to in on for and or is are was were be been being do does did i you we my your me how what why "
    "when where which who whom can could should would will shall it its this that these those there their they "
    "he she his her with at by from as about into if so than then am has have had any some more most very just "
    "also get s t please tell much many way ways"
)
ROLE_MARKERS = ("from", "to", "into", "than", "onto", "toward", "towards", "versus", "vs", "over", "against")
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000,
    "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12, "half": 0.5, "twice": 2, "double": 2,
    "triple": 3, "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "tenth": 10,
}  # fmt: skip
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_WEEKDAYS = _set("monday tuesday wednesday thursday friday saturday sunday weekday weekend weekends")
_MONTHS = _set("january february march april june july august september october november december")
_RELATIVE = _set("today tomorrow yesterday tonight overnight")
_HOLIDAYS = _set("christmas easter thanksgiving halloween hanukkah ramadan diwali passover eid valentine valentines")
_PERIOD = re.compile(r"\b(this|next|last|previous|coming) (week|weekend|month|year|night|morning|summer|winter)\b")
_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "de", "anti")
_TIME_UNITS = _set("second minute hour day week month year")  # units only after a number


@functools.lru_cache(maxsize=1)
def _lexicon() -> tuple[dict[str, frozenset[str]], dict[str, str], dict[str, str], int]:
    """(antonyms: stem -> opposite stems, entity alias -> id, unit alias -> id, longest alias in words)."""
    root = resources.files("costkit").joinpath("data")
    antonyms: dict[str, set[str]] = {}
    for line in root.joinpath("antonyms.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            a, b = stem(parts[0]), stem(parts[1])
            antonyms.setdefault(a, set()).add(b)
            antonyms.setdefault(b, set()).add(a)
    longest = 1
    tables: list[dict[str, str]] = []
    for name in ("entities.txt", "units.txt"):
        table: dict[str, str] = {}
        for line in root.joinpath(name).read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            names = [n.strip() for n in line.split("|") if n.strip()]
            for alias in names:
                key = " ".join(_words(alias))
                table.setdefault(key, names[0])
                longest = max(longest, key.count(" ") + 1)
        tables.append(table)
    return {k: frozenset(v) for k, v in antonyms.items()}, tables[0], tables[1], longest


def stem(word: str) -> str:
    """A light stemmer: enough to match plurals, -ed and -ing forms of one word."""
    for suffix, keep in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + keep
    return word


def _words(text: str) -> list[str]:
    t = text.lower().replace("\u2019", "'")  # a typographic apostrophe
    for short, long in _CONTRACTIONS.items():
        t = t.replace(short, long)
    t = _NT.sub(r"\1 not", t)
    t = _NOT_A_NEGATION.sub(" ", t)
    return _WORD.findall(t)


def _number(token: str) -> float | None:
    if token in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[token])
    m = _ORDINAL.match(token)
    if m:
        return float(m.group(1))
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


@attrs.frozen(slots=True)
class Reading:
    """What one question says, as far as the flip checks need."""

    tokens: tuple[str, ...]
    stems: frozenset[str]
    content: tuple[str, ...]  # content-word stems, in order
    negations: int
    negated: tuple[str, ...]  # the word after each negation
    numbers: frozenset[float]
    units: frozenset[str]
    dates: frozenset[str]
    entities: frozenset[str]
    names: frozenset[str]  # capitalized words inside the question (lower-cased)
    roles: tuple[tuple[str, str], ...]  # (marker, the content word after it)


@functools.lru_cache(maxsize=65536)
def read(text: str) -> Reading:
    """Read one question (memoized: a cached question is read once)."""
    _antonyms, entity_of, unit_of, longest = _lexicon()
    tokens = _words(text)
    lowered = " ".join(tokens)
    negated: list[str] = []
    negations = 0
    for i, tok in enumerate(tokens):
        if tok in NEGATORS:
            negations += 1
            nxt = next((t for t in tokens[i + 1 :] if t not in _DETERMINERS and t not in NEGATORS), "")
            negated.append(stem(nxt))
    numbers = set()
    units = set()
    entities = set()
    i = 0
    while i < len(tokens):
        matched = False
        for n in range(min(longest, len(tokens) - i), 0, -1):
            phrase = " ".join(tokens[i : i + n])
            unit = unit_of.get(phrase)
            after_number = i > 0 and (_number(tokens[i - 1]) is not None or tokens[i - 1] == "degrees")
            if unit is not None and (after_number or (len(phrase) > 1 and unit not in _TIME_UNITS)):
                units.add(unit)
                i += n
                matched = True
                break
            entity = entity_of.get(phrase)
            if entity is not None:
                entities.add(entity)
                i += n
                matched = True
                break
        if not matched:
            value = _number(tokens[i])
            if value is not None:
                numbers.add(value)
            i += 1
    dates = {t for t in tokens if t in _WEEKDAYS or t in _MONTHS or t in _RELATIVE or t in _HOLIDAYS}
    dates |= {m.group(0) for m in _PERIOD.finditer(lowered)}
    names = set()
    for m in _CAP.finditer(text):
        start = m.start()
        before = text[:start].rstrip()
        if not before or before[-1] in ".?!:;\"'(":  # a sentence start is not a name
            continue
        word = m.group(0).lower()
        if word not in _FUNCTION and word not in entity_of and word not in unit_of:
            names.add(word)
    roles = []
    for i, tok in enumerate(tokens):
        if tok in ROLE_MARKERS:
            arg = next((t for t in tokens[i + 1 :] if t not in _DETERMINERS), None)
            if arg is not None and arg not in _FUNCTION:
                roles.append((tok, stem(arg)))
    return Reading(
        tokens=tuple(tokens),
        stems=frozenset(stem(t) for t in tokens),
        content=tuple(stem(t) for t in tokens if t not in _FUNCTION and t not in NEGATORS),
        negations=negations,
        negated=tuple(negated),
        numbers=frozenset(numbers),
        units=frozenset(units),
        dates=frozenset(dates),
        entities=frozenset(entities),
        names=frozenset(names),
        roles=tuple(roles),
    )


def _antonym(a: Reading, b: Reading) -> bool:
    antonyms = _lexicon()[0]
    ca, cb = Counter(stem(t) for t in a.tokens), Counter(stem(t) for t in b.tokens)
    only_a, only_b = set(ca - cb), set(cb - ca)  # counted: "turn on X on my phone" / "turn off X on my phone"
    for w in only_a:
        opposite = antonyms.get(w)
        if opposite is not None and opposite & only_b:
            return True
    for x, y in ((only_a, only_b), (only_b, only_a)):
        for w in x:
            for p in _PREFIXES:
                if w.startswith(p) and len(w) - len(p) >= 4 and w[len(p) :] in y:
                    return True
    return False


def _swapped(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Same content words, with two of them exchanged around something, or the two sides of a pivot."""
    if a == b or len(a) != len(b) or Counter(a) != Counter(b):
        return False
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 2 and diff[1] - diff[0] >= 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
        return True
    return any(list(b) == [*a[i + 1 :], a[i], *a[:i]] for i in range(1, len(a) - 1))


def contrast(a: str, b: str) -> str | None:
    """The kind of meaning flip between two questions (see the module docstring), or None."""
    if a == b:
        return None
    ra, rb = read(a), read(b)
    if ra.negations != rb.negations:
        return "negation"
    if (
        ra.negated != rb.negated
        and Counter(ra.negated) != Counter(rb.negated)
        and all(w in rb.stems for w in ra.negated if w)
        and all(w in ra.stems for w in rb.negated if w)
    ):
        return "negation_scope"
    if ra.numbers != rb.numbers and (
        (ra.numbers and rb.numbers) or max(ra.numbers | rb.numbers) >= 10  # "a cup" / "one cup" agree
    ):
        return "number"
    if ra.units and rb.units and ra.units != rb.units:
        return "unit"
    if ra.dates and rb.dates and ra.dates != rb.dates:
        return "date"
    named_a, named_b = ra.entities | ra.names, rb.entities | rb.names
    only_a = {x for x in named_a - named_b if x not in rb.tokens and stem(x) not in rb.stems}
    only_b = {x for x in named_b - named_a if x not in ra.tokens and stem(x) not in ra.stems}
    if only_a and only_b:  # each names something the other does not: Austria / Australia, Python / Go
        return "entity"
    if _antonym(ra, rb):
        return "antonym"
    same_words = Counter(ra.content) == Counter(rb.content)
    same_markers = Counter(m for m, _ in ra.roles) == Counter(m for m, _ in rb.roles)
    if same_words and ra.roles and same_markers and Counter(ra.roles) != Counter(rb.roles):
        return "role_swap"  # from checking to savings / from savings to checking
    if same_words and _swapped(ra.content, rb.content):
        return "role_swap"
    return None


__all__ = ["NEGATORS", "ROLE_MARKERS", "Reading", "contrast", "read", "stem"]
