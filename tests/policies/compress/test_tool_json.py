import json

from costkit.policies.compress.tool_json import trim_tool_result
from costkit.tokens import count_text


def count(text):
    return count_text(text, "gpt-4o")


DOC = json.dumps({"results": [{"id": i, "body": "lorem ipsum " * 60} for i in range(30)], "total": 30}, indent=2)


def test_json_keeps_every_key_and_says_what_was_cut():
    out = trim_tool_result(DOC, 300, count)
    assert count(out) <= 300
    value = json.loads(out)
    assert set(value) == {"results", "total"} and value["total"] == 30
    assert value["results"][-1].endswith("more items")
    assert "chars cut)" in value["results"][0]["body"]
    assert set(value["results"][0]) == {"id", "body"}


def test_under_budget_is_untouched_and_text_keeps_head_and_tail_lines():
    assert trim_tool_result('{"a": 1}', 100, count) == '{"a": 1}'
    log = "\n".join(f"line {i} of the log" for i in range(100))
    out = trim_tool_result(log, 40, count)
    assert out.startswith("line 0 of the log") and out.endswith("line 99 of the log")
    assert "lines cut" in out and count(out) <= 40
