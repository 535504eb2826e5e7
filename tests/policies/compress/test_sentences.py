from costkit.policies.compress.sentences import phrase_spans, sentence_spans, split_sentences


def test_sentences_cover_the_text_and_skip_abbreviations_initials_and_decimals():
    text = "Mr. Smith met J. R. R. Tolkien in 1950. It cost 3.5 pounds! Was it fun? Yes.\n\nA heading\nmore"
    parts = split_sentences(text)
    assert "".join(parts) == text
    assert [p.strip() for p in parts] == [
        "Mr. Smith met J. R. R. Tolkien in 1950.",
        "It cost 3.5 pounds!",
        "Was it fun?",
        "Yes.",
        "A heading\nmore",
    ]


def test_lowercase_after_a_period_does_not_end_a_sentence():
    assert len(sentence_spans("He lived in Washington D.C. for years. Then he left.")) == 2


def test_phrases_split_at_clause_punctuation():
    s = "The Normans, who were Vikings, settled in France; they conquered England."
    assert [p.of(s) for p in phrase_spans(s)] == ["The Normans, ", "who were Vikings, ", "settled in France; ",
                                                  "they conquered England."]
