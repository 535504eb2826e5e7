"""Sentence and phrase boundaries, as character spans, so a selection never cuts a sentence in half.

A rule-based splitter (no model, no download): a sentence ends at ``.``, ``!``, ``?`` or ``…``
(closing quotes and brackets included) followed by white space and something that can start a
sentence, unless the word before the period is a known abbreviation, a single initial ("J. R. R.")
or a number's decimal point. A blank line always ends a sentence (headings, list items). Spans
cover the text without gaps, so joining the kept spans in order reproduces the kept sentences
exactly.
"""

from __future__ import annotations

import re

import attrs

#: words that end with a period without ending a sentence (compared lower-cased, without the period)
_ABBREVIATIONS_TEXT = """
    mr mrs ms dr prof sr jr st mt ft vs etc al e.g i.e cf approx dept est fig figs no nos vol vols
    gen col lt sgt capt cmdr adm gov sen rep pres rev hon inc ltd co corp bros jan feb mar apr jun
    jul aug sep sept oct nov dec mon tue wed thu fri sat sun u.s u.k u.n a.m p.m ca c b.c a.d
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())

_BOUNDARY = re.compile(
    r"""(?:[.!?…]+["'”’)\]]*)(?=\s+["'“‘(\[]*[A-Z0-9À-Ý])"""  # end punctuation, then space and a capital/digit  # noqa: RUF001
    r"""|\n[ \t]*\n"""  # a blank line
)
_LAST_WORD = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")
_PHRASE = re.compile(r"""[,;:—–]\s+|\s+\((?=[^)]*\))""")  # noqa: RUF001


@attrs.frozen(slots=True)
class Span:
    """``text[start:end]``: one sentence (or phrase) with the white space that follows it."""

    start: int
    end: int

    def of(self, text: str) -> str:
        return text[self.start : self.end]


def _ends_sentence(text: str, punct_end: int) -> bool:
    """Whether the period before ``punct_end`` ends a sentence (not an abbreviation or an initial)."""
    head = text[:punct_end].rstrip("\"'”’)]")  # noqa: RUF001
    if not head.endswith("."):
        return True
    m = _LAST_WORD.search(head)
    if m is None:
        return True
    word = m.group(1).lower()
    if word in ABBREVIATIONS:
        return False
    return not (len(word) == 1 and word.isalpha())  # an initial: "J. R. R. Tolkien"


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of ``text``, covering it without gaps (trailing space stays with its sentence)."""
    spans: list[Span] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group(0).startswith("\n"):
            end = m.end()
        else:
            if not _ends_sentence(text, m.end()):
                continue
            end = m.end()
            while end < len(text) and text[end].isspace():
                end += 1
        if text[start:end].strip():
            spans.append(Span(start, end))
            start = end
    if start < len(text):
        if spans and not text[start:].strip():
            spans[-1] = Span(spans[-1].start, len(text))
        else:
            spans.append(Span(start, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (each with its trailing white space; they join back to ``text``)."""
    return [s.of(text) for s in sentence_spans(text)]


def phrase_spans(sentence: str) -> list[Span]:
    """Spans of a sentence's clauses: cut after commas, semicolons, colons, dashes and before brackets."""
    spans: list[Span] = []
    start = 0
    for m in _PHRASE.finditer(sentence):
        end = m.end() if not m.group(0).lstrip().startswith("(") else m.start()
        if end > start and sentence[start:end].strip():
            spans.append(Span(start, end))
            start = end
    if start < len(sentence):
        spans.append(Span(start, len(sentence)))
    return spans


__all__ = ["ABBREVIATIONS", "Span", "phrase_spans", "sentence_spans", "split_sentences"]
