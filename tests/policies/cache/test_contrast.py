"""Meaning flips: each kind is caught, paraphrases are not, and the word lists ship with the package."""

from __future__ import annotations

import pytest

from costkit.policies.cache.contrast import contrast, read

FLIPS = [
    ("Is the patient allergic to penicillin?", "Is the patient not allergic to penicillin?", "negation"),
    ("Why does my laptop turn on?", "Why doesn't my laptop turn on?", "negation"),
    ("Is it okay to stretch but not warm up?", "Is it okay to warm up but not stretch?", "negation_scope"),
    ("How do I enable dark mode?", "How do I disable dark mode?", "antonym"),
    ("How do I include weekends in the range?", "How do I exclude weekends in the range?", "antonym"),
    ("How do I install a font?", "How do I uninstall a font?", "antonym"),
    ("How do I turn on location on my phone?", "How do I turn off location on my phone?", "antonym"),
    ("Move money from checking to savings", "Move money from savings to checking", "role_swap"),
    ("Does stress cause insomnia?", "Does insomnia cause stress?", "role_swap"),
    ("Calories in 100 g of rice?", "Calories in 500 g of rice?", "number"),
    ("Can I take two tablets a day?", "Can I take four tablets a day?", "number"),
    ("Is 30 degrees Celsius hot?", "Is 30 degrees Fahrenheit hot?", "unit"),
    ("Bake at 200 degrees C?", "Bake at 200 degrees F?", "unit"),
    ("Is 64 GB enough?", "Is 64 MB enough?", "unit"),
    ("Is the store open on Monday?", "Is the store open on Sunday?", "date"),
    ("What is the forecast for today?", "What is the forecast for tomorrow?", "date"),
    ("What is the capital of Austria?", "What is the capital of Australia?", "entity"),
    ("How do I reverse a string in C++?", "How do I reverse a string in C#?", "entity"),
    ("How old is Tom Hanks?", "How old is Tom Hardy?", "entity"),
]

SAME = [
    ("How do I reset my password?", "I forgot my password, how can I reset it?"),
    ("How many ounces are in a cup?", "How many oz in one cup?"),
    ("What time zone is New York in?", "what timezone is nyc"),
    ("What is the capital of Australia?", "whats australia's capital city"),
    ("Is it safe to eat a raw egg? Why or why not?", "How safe is it to eat raw eggs?"),
    ("What is the best time of year to visit Japan?", "which month is best for a trip to japan"),
    ("May I pay on Monday?", "Can I pay on Monday?"),
]


@pytest.mark.parametrize(("a", "b", "kind"), FLIPS)
def test_each_kind_of_flip_is_caught_both_ways(a: str, b: str, kind: str) -> None:
    assert contrast(a, b) == kind
    assert contrast(b, a) == kind


@pytest.mark.parametrize(("a", "b"), [*SAME, ("How do I reset my password?", "how to reset my password")])
def test_paraphrases_are_not_vetoed_either_way(a: str, b: str) -> None:
    assert contrast(a, b) is None
    assert contrast(b, a) is None


def test_identical_text_is_never_a_flip() -> None:
    assert contrast("Is it not safe?", "Is it not safe?") is None


def test_reading_uses_the_shipped_lists() -> None:
    r = read("Flights from Vienna to Paris in July for 2 people, 20 kg of luggage")
    assert {"vienna", "paris"} <= r.entities and "kg" in r.units and "july" in r.dates
    assert r.numbers == {2.0, 20.0} and ("from", "vienna") in r.roles
