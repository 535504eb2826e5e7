"""Near misses: question pairs that share almost every word but ask different things.

Written for costkit's cache benchmarks (hand-written templates and vocabularies below; nothing is
taken from a public benchmark). Each template is a pair of question shapes that differ in one
meaning-flipping way; filling it with each row of its vocabulary gives one pair. Kinds: negation,
negation scope, antonyms, role / argument swaps, numbers, units, dates and named entities.

Whole templates are held out (``held_out=True``): the figures the docs quote for unseen near misses
come from templates nothing in costkit was adjusted on.

    python benchmarks/near_miss.py            # print the pairs and a count per kind
"""

from __future__ import annotations

from collections import Counter

import attrs


@attrs.frozen
class NearMiss:
    kind: str
    template: str
    a: str
    b: str
    held_out: bool


# (kind, template id, held out?, shape a, shape b, rows of slot values)
TEMPLATES: list[tuple[str, str, bool, str, str, list[dict[str, str]]]] = [
    # ------------------------------------------------------------------ negation
    (
        "negation",
        "allergic",
        False,
        "Is the patient allergic to {x}?",
        "Is the patient not allergic to {x}?",
        [{"x": v} for v in ("penicillin", "peanuts", "latex", "aspirin", "shellfish", "sulfa drugs")],
    ),
    (
        "negation",
        "device-on",
        False,
        "Why does my {x} turn on by itself?",
        "Why doesn't my {x} turn on by itself?",
        [{"x": v} for v in ("laptop", "TV", "phone", "dishwasher", "printer", "car radio")],
    ),
    (
        "negation",
        "foods-contain",
        False,
        "Which foods contain {x}?",
        "Which foods do not contain {x}?",
        [{"x": v} for v in ("gluten", "lactose", "caffeine", "added sugar", "soy", "nuts")],
    ),
    (
        "negation",
        "what-if",
        True,
        "What happens if I {x}?",
        "What happens if I don't {x}?",
        [
            {"x": v}
            for v in (
                "take my antibiotics with food",
                "pay my credit card bill on time",
                "update my phone",
                "file my taxes this year",
                "renew my lease",
                "water the lawn",
            )
        ],
    ),
    (
        "negation",
        "plan-include",
        False,
        "Does the {x} plan include {y}?",
        "Does the {x} plan not include {y}?",
        [
            {"x": "basic", "y": "dental cover"},
            {"x": "premium", "y": "roadside assistance"},
            {"x": "family", "y": "international calls"},
            {"x": "student", "y": "cloud storage"},
            {"x": "starter", "y": "phone support"},
        ],
    ),
    (
        "negation",
        "never",
        True,
        "Should I ever {x}?",
        "Should I never {x}?",
        [
            {"x": v}
            for v in (
                "wash my hair with cold water",
                "drink coffee before a run",
                "leave my laptop plugged in overnight",
                "use bleach on wooden floors",
                "skip breakfast",
            )
        ],
    ),
    (
        "negation",
        "without",
        False,
        "Can I make {x} with {y}?",
        "Can I make {x} without {y}?",
        [
            {"x": "pancakes", "y": "milk"},
            {"x": "bread", "y": "yeast"},
            {"x": "a cake", "y": "eggs"},
            {"x": "pasta", "y": "eggs"},
            {"x": "cookies", "y": "butter"},
        ],
    ),
    (
        "negation",
        "is-covered",
        True,
        "Is {x} covered by my insurance?",
        "Is {x} not covered by my insurance?",
        [
            {"x": v}
            for v in ("a broken phone screen", "flood damage", "physical therapy", "a rental car", "lost luggage")
        ],
    ),
    # ------------------------------------------------------------------ negation scope
    (
        "negation_scope",
        "not-all",
        False,
        "Is it true that not all {x} are {y}?",
        "Is it true that all {x} are not {y}?",
        [
            {"x": "mushrooms", "y": "poisonous"},
            {"x": "snakes", "y": "venomous"},
            {"x": "bacteria", "y": "harmful"},
            {"x": "fats", "y": "unhealthy"},
            {"x": "spiders", "y": "dangerous"},
        ],
    ),
    (
        "negation_scope",
        "but-not",
        False,
        "Is it okay to {x} but not {y}?",
        "Is it okay to {y} but not {x}?",
        [
            {"x": "stretch", "y": "warm up"},
            {"x": "brush", "y": "floss"},
            {"x": "wash the car", "y": "wax it"},
            {"x": "reply to the email", "y": "call back"},
            {"x": "water the roots", "y": "mist the leaves"},
        ],
    ),
    (
        "negation_scope",
        "not-stop",
        True,
        "Should I stop taking {x} and not call my doctor?",
        "Should I not stop taking {x} and call my doctor?",
        [{"x": v} for v in ("my blood pressure pills", "antidepressants", "the antibiotics", "my insulin")],
    ),
    # ------------------------------------------------------------------ antonyms
    (
        "antonym",
        "enable",
        False,
        "How do I {x} {y} on my {z}?",
        "How do I {x2} {y} on my {z}?",
        [
            {"x": "enable", "x2": "disable", "y": "dark mode", "z": "iPhone"},
            {"x": "turn on", "x2": "turn off", "y": "location services", "z": "Android phone"},
            {"x": "enable", "x2": "disable", "y": "automatic updates", "z": "laptop"},
            {"x": "lock", "x2": "unlock", "y": "the screen rotation", "z": "iPad"},
            {"x": "mute", "x2": "unmute", "y": "notifications", "z": "phone"},
            {"x": "show", "x2": "hide", "y": "hidden files", "z": "Mac"},
        ],
    ),
    (
        "antonym",
        "include",
        False,
        "How do I {x} {y} from the {z}?",
        "How do I {x2} {y} from the {z}?",
        [
            {"x": "include", "x2": "exclude", "y": "weekends", "z": "date range"},
            {"x": "add", "x2": "remove", "y": "a user", "z": "group chat"},
            {"x": "import", "x2": "export", "y": "contacts", "z": "spreadsheet"},
            {"x": "download", "x2": "upload", "y": "photos", "z": "cloud"},
            {"x": "install", "x2": "uninstall", "y": "a font", "z": "system folder"},
        ],
    ),
    (
        "antonym",
        "increase",
        False,
        "How can I {x} my {y}?",
        "How can I {x2} my {y}?",
        [
            {"x": "increase", "x2": "decrease", "y": "blood pressure"},
            {"x": "raise", "x2": "lower", "y": "credit limit"},
            {"x": "gain", "x2": "lose", "y": "weight quickly"},
            {"x": "speed up", "x2": "slow down", "y": "metabolism"},
            {"x": "maximize", "x2": "minimize", "y": "tax refund"},
            {"x": "widen", "x2": "narrow", "y": "search results"},
        ],
    ),
    (
        "antonym",
        "hot-cold",
        True,
        "Why is my {x} so {y}?",
        "Why is my {x} so {y2}?",
        [
            {"x": "bedroom", "y": "hot", "y2": "cold"},
            {"x": "internet", "y": "fast", "y2": "slow"},
            {"x": "dough", "y": "wet", "y2": "dry"},
            {"x": "skin", "y": "oily", "y2": "dry"},
            {"x": "baby", "y": "quiet", "y2": "loud"},
            {"x": "bill", "y": "high", "y2": "low"},
        ],
    ),
    (
        "antonym",
        "legal",
        False,
        "Is it {x} to {y}?",
        "Is it {x2} to {y}?",
        [
            {"x": "legal", "x2": "illegal", "y": "record a phone call"},
            {"x": "safe", "x2": "dangerous", "y": "run a fever of 39 degrees"},
            {"x": "possible", "x2": "impossible", "y": "recover deleted messages"},
            {"x": "healthy", "x2": "unhealthy", "y": "eat eggs every day"},
            {"x": "allowed", "x2": "forbidden", "y": "bring food on the plane"},
        ],
    ),
    (
        "antonym",
        "max-min",
        True,
        "What is the {x} {y}?",
        "What is the {x2} {y}?",
        [
            {"x": "maximum", "x2": "minimum", "y": "dose of ibuprofen for adults"},
            {"x": "highest", "x2": "lowest", "y": "temperature ever recorded"},
            {"x": "earliest", "x2": "latest", "y": "check-in time at the hotel"},
            {"x": "longest", "x2": "shortest", "y": "river in Europe"},
            {"x": "first", "x2": "last", "y": "day to file taxes"},
        ],
    ),
    (
        "antonym",
        "before-after",
        False,
        "Should I eat {x} a workout?",
        "Should I eat {x2} a workout?",
        [{"x": "before", "x2": "after"}],
    ),
    (
        "antonym",
        "buy-sell",
        False,
        "Is now a good time to {x} {y}?",
        "Is now a good time to {x2} {y}?",
        [
            {"x": "buy", "x2": "sell", "y": "a house"},
            {"x": "buy", "x2": "sell", "y": "gold"},
            {"x": "rent", "x2": "buy", "y": "an apartment"},
            {"x": "borrow", "x2": "lend", "y": "money to family"},
        ],
    ),
    (
        "antonym",
        "accept",
        True,
        "How do I {x} a {y}?",
        "How do I {x2} a {y}?",
        [
            {"x": "accept", "x2": "decline", "y": "meeting invitation in Outlook"},
            {"x": "allow", "x2": "block", "y": "pop-up in Chrome"},
            {"x": "open", "x2": "close", "y": "bank account online"},
            {"x": "start", "x2": "stop", "y": "subscription"},
            {"x": "follow", "x2": "unfollow", "y": "page on Facebook"},
        ],
    ),
    # ------------------------------------------------------------------ role / argument swaps
    (
        "role_swap",
        "transfer",
        False,
        "How do I transfer money from my {x} to my {y}?",
        "How do I transfer money from my {y} to my {x}?",
        [
            {"x": "checking account", "y": "savings account"},
            {"x": "PayPal", "y": "bank account"},
            {"x": "Venmo", "y": "debit card"},
            {"x": "brokerage account", "y": "IRA"},
        ],
    ),
    (
        "role_swap",
        "convert",
        False,
        "How do I convert {x} to {y}?",
        "How do I convert {y} to {x}?",
        [
            {"x": "Celsius", "y": "Fahrenheit"},
            {"x": "PDF", "y": "Word"},
            {"x": "miles", "y": "kilometers"},
            {"x": "pounds", "y": "kilograms"},
            {"x": "JPG", "y": "PNG"},
            {"x": "cups", "y": "grams"},
        ],
    ),
    (
        "role_swap",
        "flight",
        False,
        "How long is the flight from {x} to {y}?",
        "How long is the flight from {y} to {x}?",
        [
            {"x": "London", "y": "New York"},
            {"x": "Paris", "y": "Tokyo"},
            {"x": "Sydney", "y": "Singapore"},
            {"x": "Chicago", "y": "Denver"},
        ],
    ),
    (
        "role_swap",
        "bigger",
        True,
        "Is a {x} bigger than a {y}?",
        "Is a {y} bigger than a {x}?",
        [
            {"x": "queen bed", "y": "full bed"},
            {"x": "tablespoon", "y": "dessert spoon"},
            {"x": "crocodile", "y": "alligator"},
            {"x": "hurricane", "y": "typhoon"},
        ],
    ),
    (
        "role_swap",
        "catch",
        False,
        "Can {x} catch {d} from {y}?",
        "Can {y} catch {d} from {x}?",
        [
            {"x": "dogs", "y": "humans", "d": "a cold"},
            {"x": "cats", "y": "people", "d": "the flu"},
            {"x": "babies", "y": "adults", "d": "chickenpox"},
        ],
    ),
    (
        "role_swap",
        "cause",
        True,
        "Does {x} cause {y}?",
        "Does {y} cause {x}?",
        [
            {"x": "stress", "y": "insomnia"},
            {"x": "depression", "y": "obesity"},
            {"x": "anxiety", "y": "high blood pressure"},
        ],
    ),
    (
        "role_swap",
        "move-files",
        False,
        "How do I move files from my {x} to my {y}?",
        "How do I move files from my {y} to my {x}?",
        [{"x": "iPhone", "y": "Mac"}, {"x": "laptop", "y": "external drive"}, {"x": "Android phone", "y": "PC"}],
    ),
    (
        "role_swap",
        "owes",
        False,
        "Does the {x} pay the {y} for {z}?",
        "Does the {y} pay the {x} for {z}?",
        [
            {"x": "landlord", "y": "tenant", "z": "repairs"},
            {"x": "buyer", "y": "seller", "z": "closing costs"},
            {"x": "employer", "y": "employee", "z": "training"},
        ],
    ),
    # ------------------------------------------------------------------ numbers
    (
        "number",
        "calories",
        False,
        "How many calories are in {x} g of {y}?",
        "How many calories are in {x2} g of {y}?",
        [
            {"x": "100", "x2": "500", "y": "rice"},
            {"x": "50", "x2": "200", "y": "almonds"},
            {"x": "100", "x2": "250", "y": "chicken breast"},
            {"x": "30", "x2": "300", "y": "cheddar"},
        ],
    ),
    (
        "number",
        "dose",
        False,
        "Is {x} mg of {y} safe for a child?",
        "Is {x2} mg of {y} safe for a child?",
        [
            {"x": "200", "x2": "400", "y": "ibuprofen"},
            {"x": "250", "x2": "500", "y": "paracetamol"},
            {"x": "5", "x2": "10", "y": "melatonin"},
        ],
    ),
    (
        "number",
        "mortgage",
        True,
        "What is the rate on a {x}-year mortgage?",
        "What is the rate on a {x2}-year mortgage?",
        [{"x": "15", "x2": "30"}, {"x": "10", "x2": "20"}, {"x": "5", "x2": "7"}],
    ),
    (
        "number",
        "tablets",
        False,
        "Can I take {x} tablets of {y} a day?",
        "Can I take {x2} tablets of {y} a day?",
        [
            {"x": "two", "x2": "four", "y": "aspirin"},
            {"x": "3", "x2": "6", "y": "antacid"},
            {"x": "one", "x2": "three", "y": "vitamin D"},
        ],
    ),
    (
        "number",
        "people",
        True,
        "How much pasta do I need for {x} people?",
        "How much pasta do I need for {x2} people?",
        [{"x": "4", "x2": "12"}, {"x": "six", "x2": "twenty"}, {"x": "2", "x2": "8"}],
    ),
    (
        "number",
        "age",
        False,
        "Is it normal for a {x}-year-old to {y}?",
        "Is it normal for a {x2}-year-old to {y}?",
        [
            {"x": "2", "x2": "5", "y": "not talk yet"},
            {"x": "10", "x2": "16", "y": "sleep 12 hours"},
            {"x": "40", "x2": "70", "y": "get heart palpitations"},
        ],
    ),
    (
        "number",
        "version",
        False,
        "How do I upgrade from {y} {x} to {x2}?",
        "How do I upgrade from {y} {x2} to {x}?",
        [{"x": "10", "x2": "11", "y": "Windows"}, {"x": "3.11", "x2": "3.12", "y": "Python"}],
    ),
    # ------------------------------------------------------------------ units
    ("unit", "hot", False, "Is 30 degrees {x} hot?", "Is 30 degrees {x2} hot?", [{"x": "Celsius", "x2": "Fahrenheit"}]),
    (
        "unit",
        "walk",
        False,
        "How long does it take to walk 5 {x}?",
        "How long does it take to walk 5 {x2}?",
        [{"x": "miles", "x2": "kilometers"}, {"x": "km", "x2": "mi"}],
    ),
    (
        "unit",
        "flour",
        True,
        "How many cups are in 1 {x} of flour?",
        "How many cups are in 1 {x2} of flour?",
        [{"x": "pound", "x2": "kilogram"}, {"x": "kg", "x2": "lb"}, {"x": "ounce", "x2": "gram"}],
    ),
    (
        "unit",
        "storage",
        False,
        "Is 64 {x} of storage enough for a phone?",
        "Is 64 {x2} of storage enough for a phone?",
        [{"x": "GB", "x2": "MB"}, {"x": "GB", "x2": "TB"}],
    ),
    (
        "unit",
        "sugar",
        False,
        "How many calories are in 100 {x} of sugar?",
        "How many calories are in 100 {x2} of sugar?",
        [{"x": "grams", "x2": "ounces"}, {"x": "g", "x2": "oz"}, {"x": "ml", "x2": "cups"}],
    ),
    (
        "unit",
        "speed",
        True,
        "Is 100 {x} fast for a car?",
        "Is 100 {x2} fast for a car?",
        [{"x": "mph", "x2": "km/h"}, {"x": "miles per hour", "x2": "kilometers per hour"}],
    ),
    (
        "unit",
        "bake",
        False,
        "Should I bake bread at 200 degrees {x}?",
        "Should I bake bread at 200 degrees {x2}?",
        [{"x": "Celsius", "x2": "Fahrenheit"}, {"x": "C", "x2": "F"}],
    ),
    (
        "unit",
        "run-time",
        False,
        "Is running for 30 {x} a day enough?",
        "Is running for 30 {x2} a day enough?",
        [{"x": "minutes", "x2": "seconds"}, {"x": "minutes", "x2": "hours"}],
    ),
    # ------------------------------------------------------------------ dates
    (
        "date",
        "open-day",
        False,
        "Is the store open on {x}?",
        "Is the store open on {x2}?",
        [
            {"x": "Monday", "x2": "Sunday"},
            {"x": "Saturday", "x2": "Friday"},
            {"x": "Christmas Day", "x2": "Easter"},
            {"x": "New Year's Day", "x2": "Thanksgiving"},
        ],
    ),
    (
        "date",
        "forecast",
        False,
        "What is the weather forecast for {x}?",
        "What is the weather forecast for {x2}?",
        [
            {"x": "today", "x2": "tomorrow"},
            {"x": "this weekend", "x2": "next weekend"},
            {"x": "Tuesday", "x2": "Wednesday"},
        ],
    ),
    (
        "date",
        "year",
        True,
        "What happened to the stock market in {x}?",
        "What happened to the stock market in {x2}?",
        [{"x": "2008", "x2": "2020"}, {"x": "1929", "x2": "1987"}, {"x": "2000", "x2": "2022"}],
    ),
    (
        "date",
        "month",
        False,
        "Is {x} a good month to visit Iceland?",
        "Is {x2} a good month to visit Iceland?",
        [{"x": "January", "x2": "July"}, {"x": "March", "x2": "October"}, {"x": "June", "x2": "December"}],
    ),
    (
        "date",
        "deadline",
        False,
        "Is the tax deadline on April {x}?",
        "Is the tax deadline on April {x2}?",
        [{"x": "15", "x2": "18"}, {"x": "1st", "x2": "30th"}],
    ),
    (
        "date",
        "since",
        True,
        "What has changed since {x}?",
        "What has changed since {x2}?",
        [{"x": "last year", "x2": "last week"}, {"x": "yesterday", "x2": "last month"}],
    ),
    # ------------------------------------------------------------------ named entities
    (
        "entity",
        "capital",
        False,
        "What is the capital of {x}?",
        "What is the capital of {x2}?",
        [
            {"x": "Austria", "x2": "Australia"},
            {"x": "Sweden", "x2": "Switzerland"},
            {"x": "Niger", "x2": "Nigeria"},
            {"x": "Slovakia", "x2": "Slovenia"},
            {"x": "Iran", "x2": "Iraq"},
            {"x": "Colombia", "x2": "Columbia"},
        ],
    ),
    (
        "entity",
        "visa",
        False,
        "Do I need a visa to visit {x}?",
        "Do I need a visa to visit {x2}?",
        [
            {"x": "Canada", "x2": "Mexico"},
            {"x": "India", "x2": "Indonesia"},
            {"x": "Dominica", "x2": "the Dominican Republic"},
            {"x": "Georgia", "x2": "Armenia"},
        ],
    ),
    (
        "entity",
        "population",
        True,
        "What is the population of {x}?",
        "What is the population of {x2}?",
        [
            {"x": "Portland, Oregon", "x2": "Portland, Maine"},
            {"x": "Birmingham", "x2": "Manchester"},
            {"x": "San Jose", "x2": "San Diego"},
            {"x": "Vienna", "x2": "Venice"},
        ],
    ),
    (
        "entity",
        "install",
        False,
        "How do I install {x} on {y}?",
        "How do I install {x} on {y2}?",
        [
            {"x": "Docker", "y": "Windows", "y2": "Linux"},
            {"x": "Python", "y": "Mac", "y2": "Ubuntu"},
            {"x": "Steam", "y": "Windows 11", "y2": "macOS"},
            {"x": "Node.js", "y": "Debian", "y2": "Fedora"},
        ],
    ),
    (
        "entity",
        "ceo",
        False,
        "Who is the CEO of {x}?",
        "Who is the CEO of {x2}?",
        [
            {"x": "Apple", "x2": "Google"},
            {"x": "Microsoft", "x2": "Amazon"},
            {"x": "Tesla", "x2": "Toyota"},
            {"x": "Netflix", "x2": "Spotify"},
        ],
    ),
    (
        "entity",
        "language",
        True,
        "How do I reverse a string in {x}?",
        "How do I reverse a string in {x2}?",
        [
            {"x": "Python", "x2": "Java"},
            {"x": "JavaScript", "x2": "Go"},
            {"x": "C++", "x2": "C#"},
            {"x": "Ruby", "x2": "Rust"},
        ],
    ),
    (
        "entity",
        "spoken",
        False,
        "What language is spoken in {x}?",
        "What language is spoken in {x2}?",
        [{"x": "Belgium", "x2": "Brazil"}, {"x": "Austria", "x2": "Australia"}, {"x": "Chile", "x2": "China"}],
    ),
    (
        "entity",
        "person",
        False,
        "How old is {x}?",
        "How old is {x2}?",
        [
            {"x": "Taylor Swift", "x2": "Taylor Lautner"},
            {"x": "Tom Hanks", "x2": "Tom Hardy"},
            {"x": "Serena Williams", "x2": "Venus Williams"},
            {"x": "Prince William", "x2": "Prince Harry"},
        ],
    ),
    (
        "entity",
        "team",
        True,
        "When did the {x} last win a championship?",
        "When did the {x2} last win a championship?",
        [
            {"x": "Chicago Bulls", "x2": "Chicago Bears"},
            {"x": "New York Giants", "x2": "New York Jets"},
            {"x": "LA Lakers", "x2": "LA Clippers"},
        ],
    ),
]


def near_misses() -> list[NearMiss]:
    """Every pair, in template order (deterministic)."""
    out = []
    for kind, name, held_out, shape_a, shape_b, rows in TEMPLATES:
        for row in rows:
            a, b = shape_a.format(**row), shape_b.format(**row)
            if a != b:
                out.append(NearMiss(kind=kind, template=name, a=a, b=b, held_out=held_out))
    return out


def main() -> None:
    pairs = near_misses()
    for p in pairs:
        print(f"[{p.kind}{' held-out' if p.held_out else ''}] {p.a}  |  {p.b}")
    kinds = Counter(p.kind for p in pairs)
    held = sum(p.held_out for p in pairs)
    print(f"\n{len(pairs)} pairs ({held} held out) from {len(TEMPLATES)} templates: {dict(kinds)}")
    assert len({(p.a, p.b) for p in pairs}) == len(pairs), "duplicate pairs"


if __name__ == "__main__":
    main()
