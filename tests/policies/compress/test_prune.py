from costkit.policies.compress.prune import information_bits, prune_tokens
from costkit.tokens import count_text

TEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region in "
        "France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway.")


def count(text):
    return count_text(text, "gpt-4o")


def test_common_words_carry_less_information_than_rare_ones():
    assert information_bits("the") < 6 < information_bits("pirates") < information_bits("zzqxv")


def test_prunes_to_the_ratio_keeping_names_numbers_and_query_words():
    out = prune_tokens(TEXT, 0.6, count, query="Where did the raiders come from?")
    assert count(out) <= int(count(TEXT) * 0.6)
    for kept in ("Normandy", "10th", "Denmark", "Iceland", "Norway", "raiders"):
        assert kept in out
    assert " the " not in out
    assert prune_tokens(TEXT, 1.0, count) == TEXT
