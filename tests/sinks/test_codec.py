from __future__ import annotations

import json
import math

from costkit.records import FIELDS
from costkit.sinks._codec import dumps, jsonable, loads_mapping, record_from_json, record_from_mapping, record_to_json


def test_every_field_in_one_line(make_record) -> None:
    line = record_to_json(make_record(prompt_text="a\nb"))
    assert "\n" not in line
    assert list(json.loads(line)) == list(FIELDS)


def test_round_trip(make_record) -> None:
    rec = make_record(notes={"clamped": {"max_tokens": [4096, 800]}}, cost_usd=None, priced=False)
    assert record_from_json(record_to_json(rec)) == rec


def test_jsonable_fallbacks() -> None:
    assert jsonable((1, 2)) == [1, 2]
    assert jsonable({"b", "a"}) == ["a", "b"]
    assert jsonable(frozenset()) == []
    assert jsonable(object) == str(object)
    assert json.loads(dumps({"t": (1, {"x": {2}})})) == {"t": [1, {"x": [2]}]}


def test_unknown_fields_ignored_and_missing_values_defaulted(make_record) -> None:
    d = make_record().to_dict()
    d["from_the_future"] = 1
    d["savings"] = None
    d["success"] = None
    rec = record_from_mapping(d)
    assert rec.savings == {}
    assert rec.success is True


def test_nan_cost_reads_as_unpriced(make_record) -> None:
    d = make_record().to_dict()
    d["cost_usd"] = math.nan
    assert record_from_mapping(d).cost_usd is None


def test_loads_mapping() -> None:
    assert loads_mapping(None) == {}
    assert loads_mapping("{}") == {}
    assert loads_mapping('{"router": 0.5}') == {"router": 0.5}
    assert loads_mapping("[1]") == {}
