"""Quality gates: does this answer do the job, or should a cascade escalate?

A gate looks at a call and the result it got and returns a :class:`Verdict` (truthy when the
answer passes, with a reason when it does not). Gates are tiny classes composed with operators,
in tenacity's manner::

    gate = gates.not_truncated() & gates.no_refusal() & gates.json_schema(schema)
    gate = gates.regex(r"^ANSWER: [ABCD]$") | gates.judge("gpt-4o-mini")

``&`` stops at the first failing gate and ``|`` at the first passing one, so put cheap checks
before a judge: the judge is asked only when it can change the outcome.

Most gates are pure functions of (call, result). A gate that needs a model (:func:`judge`) asks
it through the same pipeline: its :meth:`Gate.evaluate` is a generator that yields the judge's
call and receives its result, so the cascade that runs it sends that call down the chain (it is
recorded as an attempt of kind ``"judge"``). Called directly, ``gate(call, result, next=...)``
runs the same generator with the ``next`` you give it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from ._call import Call, Result
from ._pipeline import drive
from .errors import ConfigError


@attrs.frozen(slots=True)
class Verdict:
    """The outcome of a gate: ``ok``, why not (``reason``), and which gate said so."""

    ok: bool
    reason: str = ""
    gate: str = ""

    def __bool__(self) -> bool:
        return self.ok


GateFlow: TypeAlias = Generator[Call, Result, Verdict]
GateFn: TypeAlias = Callable[[Call, Result], "bool | Verdict"]


def as_verdict(value: Any, gate: str) -> Verdict:
    """Accept what a user's function returns: a Verdict as is, anything else by truthiness."""
    if isinstance(value, Verdict):
        return value if value.gate else attrs.evolve(value, gate=gate)
    ok = bool(value)
    return Verdict(ok, "" if ok else "rejected", gate)


class Gate:
    """Base class. Pure gates override :meth:`check`; gates that ask a model override :meth:`evaluate`."""

    name = "gate"

    def check(self, call: Call, result: Result) -> bool | Verdict:  # pragma: no cover - always overridden
        raise TypeError(f"{type(self).__name__} must define check(call, result) or evaluate(call, result)")

    def evaluate(self, call: Call, result: Result) -> GateFlow:
        """The gate as a flow: yields any call it needs answered, returns the Verdict."""
        yield from ()
        return as_verdict(self.check(call, result), self.name)

    def __call__(self, call: Call, result: Result, next: Callable[[Call], Result] | None = None) -> Verdict:
        return run_gate(self, call, result, next)

    def __and__(self, other: Any) -> Gate:
        return AllOf((self, as_gate(other, "gate")))

    def __rand__(self, other: Any) -> Gate:
        return AllOf((as_gate(other, "gate"), self))

    def __or__(self, other: Any) -> Gate:
        return AnyOf((self, as_gate(other, "gate")))

    def __ror__(self, other: Any) -> Gate:
        return AnyOf((as_gate(other, "gate"), self))

    def __invert__(self) -> Gate:
        return Not(self)


def run_gate(gate: Gate, call: Call, result: Result, next: Callable[[Call], Result] | None = None) -> Verdict:
    """Drive a gate's flow; a call it yields goes to ``next`` (a judge needs one)."""
    try:
        return drive(gate.evaluate(call, result), next or _refuse)
    except _NoChain:
        raise TypeError(
            f"{gate!r} asks a model: call it as gate(call, result, next=...) or use it in a cascade"
        ) from None


class _NoChain(BaseException):
    """A gate asked a model but was run without a chain (a BaseException: the driver does not throw
    it into the gate's flow, where a judge would take it for a failed judge call)."""


def _refuse(call: Call) -> Result:
    raise _NoChain


def as_gate(obj: Any, field: str = "gate") -> Gate:
    """A Gate as is; a plain ``fn(call, result) -> bool | Verdict`` becomes :func:`predicate`."""
    if isinstance(obj, Gate):
        return obj
    if callable(obj):
        return Predicate(obj)
    raise ConfigError(field, f"expected a gate or a callable (call, result) -> bool, got {type(obj).__name__}")


# ----------------------------------------------------------------------------------------- combinators


class AllOf(Gate):
    """Passes when every gate passes; stops at the first failure (its verdict is the answer)."""

    name = "all_of"

    def __init__(self, gates: Sequence[Gate]) -> None:
        flat: list[Gate] = []
        for g in gates:
            flat.extend(g.gates if isinstance(g, AllOf) else (g,))
        self.gates: tuple[Gate, ...] = tuple(flat)

    def evaluate(self, call: Call, result: Result) -> GateFlow:
        verdict = Verdict(True, "", self.name)
        for gate in self.gates:
            verdict = yield from gate.evaluate(call, result)
            if not verdict:
                return verdict
        return verdict

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.gates))


class AnyOf(Gate):
    """Passes when one gate passes; stops at the first success. Fails with every reason joined."""

    name = "any_of"

    def __init__(self, gates: Sequence[Gate]) -> None:
        flat: list[Gate] = []
        for g in gates:
            flat.extend(g.gates if isinstance(g, AnyOf) else (g,))
        self.gates: tuple[Gate, ...] = tuple(flat)

    def evaluate(self, call: Call, result: Result) -> GateFlow:
        reasons = []
        for gate in self.gates:
            verdict = yield from gate.evaluate(call, result)
            if verdict:
                return verdict
            reasons.append(f"{verdict.gate}: {verdict.reason}")
        return Verdict(False, "; ".join(reasons), self.name)

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.gates)) + ")"


class Not(Gate):
    """Inverts a gate (``~gates.regex("TODO")``: fail answers that contain TODO)."""

    name = "not"

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def evaluate(self, call: Call, result: Result) -> GateFlow:
        verdict = yield from self.gate.evaluate(call, result)
        return Verdict(not verdict.ok, "" if not verdict.ok else f"{verdict.gate} passed", self.name)

    def __repr__(self) -> str:
        return f"~{self.gate!r}"


# ----------------------------------------------------------------------------------------- pure gates


def _text(result: Result) -> str:
    return result.text or ""


_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


def strip_fences(text: str) -> str:
    """The body of a single Markdown code fence (models often wrap JSON in one), else the text."""
    m = _FENCE.match(text)
    return m.group("body") if m else text


class JsonSchema(Gate):
    """The answer parses as JSON and validates against ``schema`` (Draft 2020-12 unless it says otherwise).

    ``source="text"`` checks the message text (a single Markdown fence around it is allowed);
    ``source="tool_arguments"`` checks the arguments of every tool call instead.
    """

    name = "json_schema"

    def __init__(self, schema: Mapping[str, Any], *, source: str = "text") -> None:
        if not isinstance(schema, Mapping):
            raise ConfigError("schema", f"must be a JSON schema mapping, got {type(schema).__name__}")
        if source not in ("text", "tool_arguments"):
            raise ConfigError("source", f"must be 'text' or 'tool_arguments', got {source!r}")
        try:
            import jsonschema
        except ImportError:  # pragma: no cover - jsonschema is a declared dependency
            raise ConfigError("schema", "gates.json_schema needs jsonschema: pip install jsonschema") from None
        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigError("schema", f"not a valid JSON schema: {exc.message}") from None
        self.schema = dict(schema)
        self.source = source
        self._validator = cls(self.schema)

    def _validate(self, payload: str, what: str) -> Verdict:
        try:
            data = json.loads(strip_fences(payload))
        except ValueError as exc:
            return Verdict(False, f"{what} is not JSON: {exc}", self.name)
        error = next(iter(self._validator.iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return Verdict(False, f"{what} at {where}: {error.message}", self.name)
        return Verdict(True, "", self.name)

    def check(self, call: Call, result: Result) -> Verdict:
        if self.source == "text":
            return self._validate(_text(result), "answer")
        if not result.tool_calls:
            return Verdict(False, "no tool calls", self.name)
        for i, tc in enumerate(result.tool_calls):
            fn = tc.get("function")
            args = fn.get("arguments") if isinstance(fn, Mapping) else tc.get("arguments", tc.get("input"))
            if not isinstance(args, str):
                args = json.dumps(args)
            verdict = self._validate(args, f"tool call {i} arguments")
            if not verdict:
                return verdict
        return Verdict(True, "", self.name)

    def __repr__(self) -> str:
        return f"gates.json_schema(<{len(self.schema)} keys>)"


_MODES = ("search", "match", "fullmatch")


class Regex(Gate):
    """The answer text matches ``pattern`` (``mode``: search anywhere, match at the start, or fullmatch)."""

    name = "regex"

    def __init__(self, pattern: str | re.Pattern[str], flags: int = 0, *, mode: str = "search") -> None:
        if mode not in _MODES:
            raise ConfigError("mode", f"must be one of {_MODES}, got {mode!r}")
        try:
            self.pattern = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
        except (re.error, TypeError) as exc:
            raise ConfigError("pattern", f"not a valid regular expression: {exc}") from None
        self.mode = mode
        self._match = getattr(self.pattern, mode)

    def check(self, call: Call, result: Result) -> Verdict:
        if self._match(_text(result)):
            return Verdict(True, "", self.name)
        return Verdict(False, f"answer does not {self.mode} /{self.pattern.pattern}/", self.name)

    def __repr__(self) -> str:
        return f"gates.regex({self.pattern.pattern!r})"


class Predicate(Gate):
    """Your own check: ``fn(call, result) -> bool | Verdict``."""

    name = "predicate"

    def __init__(self, fn: GateFn, *, name: str | None = None) -> None:
        if not callable(fn):
            raise ConfigError("fn", f"must be callable (call, result) -> bool, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or str(getattr(fn, "__name__", "predicate"))

    def check(self, call: Call, result: Result) -> bool | Verdict:
        return self.fn(call, result)

    def __repr__(self) -> str:
        return f"gates.predicate({self.name})"


DEFAULT_REFUSAL_PHRASES = (
    "i'm sorry, but i can't",
    "i\u2019m sorry, but i can\u2019t",
    "i am sorry, but i cannot",
    "i'm sorry, i can't",
    "i cannot help with",
    "i can't help with",
    "i can't assist with",
    "i cannot assist with",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "as an ai language model, i cannot",
)


class NoRefusal(Gate):
    """Fails a refusal: the provider's own signal (finish reason ``refusal`` / ``content_filter``, an
    OpenAI ``message.refusal``), or an answer that *starts* with a known refusal phrase.

    Pass ``phrases=()`` to trust the provider's signals only.
    """

    name = "no_refusal"

    def __init__(self, phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES, *, window: int = 160) -> None:
        if isinstance(phrases, str) or not all(isinstance(p, str) and p for p in phrases):
            raise ConfigError("phrases", "must be a sequence of non-empty strings")
        if not isinstance(window, int) or window < 1:
            raise ConfigError("window", f"must be a positive int, got {window!r}")
        self.phrases = tuple(p.lower() for p in phrases)
        self.window = window

    def check(self, call: Call, result: Result) -> Verdict:
        if result.finish_reason in ("refusal", "content_filter"):
            return Verdict(False, f"finish reason {result.finish_reason}", self.name)
        refusal = _raw_refusal(result.raw)
        if refusal:
            return Verdict(False, f"provider refusal: {refusal[:80]}", self.name)
        head = _text(result)[: self.window].lstrip().lower()
        for phrase in self.phrases:
            if head.startswith(phrase):
                return Verdict(False, f"answer starts with a refusal ({phrase!r})", self.name)
        return Verdict(True, "", self.name)

    def __repr__(self) -> str:
        return "gates.no_refusal()"


def _raw_refusal(raw: Any) -> str | None:
    """OpenAI chat puts a refusal in ``choices[0].message.refusal``; Responses in an output part."""
    try:
        choices = getattr(raw, "choices", None)
        if choices:
            refusal = getattr(getattr(choices[0], "message", None), "refusal", None)
            return refusal if isinstance(refusal, str) and refusal else None
        for item in getattr(raw, "output", None) or ():
            for part in getattr(item, "content", None) or ():
                if getattr(part, "type", None) == "refusal":
                    text = getattr(part, "refusal", None)
                    return text if isinstance(text, str) and text else "refusal"
    except Exception:  # a raw object of an unexpected shape is not a refusal signal
        return None
    return None


class NotTruncated(Gate):
    """Fails an answer cut off by the output limit (finish reason ``length``)."""

    name = "not_truncated"

    def check(self, call: Call, result: Result) -> Verdict:
        if result.finish_reason == "length":
            return Verdict(False, "answer was truncated (finish reason length)", self.name)
        return Verdict(True, "", self.name)

    def __repr__(self) -> str:
        return "gates.not_truncated()"


class NonEmpty(Gate):
    """Fails an answer with neither text nor tool calls."""

    name = "non_empty"

    def check(self, call: Call, result: Result) -> Verdict:
        if _text(result).strip() or result.tool_calls:
            return Verdict(True, "", self.name)
        return Verdict(False, "empty answer", self.name)

    def __repr__(self) -> str:
        return "gates.non_empty()"


# ----------------------------------------------------------------------------------------- judge

JUDGE_PROMPT = (
    "You check answers for an automated system. Decide whether the ANSWER correctly and completely "
    "responds to the REQUEST. Reply with exactly one word: YES if it does, NO if it does not.\n\n"
    "REQUEST:\n{request}\n\nANSWER:\n{answer}\n\nVerdict (YES or NO):"
)


class Judge(Gate):
    """Asks a (cheap) model whether the answer does the job; passes on a reply starting with ``pass_word``.

    The judge's call goes through the same pipeline as the answer's, as an attempt of kind
    ``"judge"`` with the same request id and tags, so what judging costs shows up in the records.
    The request and answer are cut to ``max_chars`` each to bound that cost.
    """

    name = "judge"

    def __init__(
        self,
        model: str,
        *,
        prompt: str = JUDGE_PROMPT,
        pass_word: str = "YES",
        max_output_tokens: int = 3,
        max_chars: int = 8000,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError("model", "must be a non-empty model name")
        if not isinstance(prompt, str) or "{request}" not in prompt or "{answer}" not in prompt:
            raise ConfigError("prompt", "must be a str containing {request} and {answer}")
        if not isinstance(pass_word, str) or not pass_word.strip():
            raise ConfigError("pass_word", "must be a non-empty str")
        if not isinstance(max_output_tokens, int) or max_output_tokens < 1:
            raise ConfigError("max_output_tokens", f"must be a positive int, got {max_output_tokens!r}")
        if not isinstance(max_chars, int) or max_chars < 1:
            raise ConfigError("max_chars", f"must be a positive int, got {max_chars!r}")
        self.model = model
        self.prompt = prompt
        self.pass_word = pass_word.strip().lower()
        self.max_output_tokens = max_output_tokens
        self.max_chars = max_chars

    def judge_call(self, call: Call, result: Result) -> Call:
        """The call that asks the judge: same provider, request id and tags; none of the app's tools or formats."""
        asked = [m for m in call.messages if m.get("role") in ("system", "developer", "user")]
        request = "\n\n".join(f"[{m.get('role')}] {_content(m)}" for m in asked)
        answer = _text(result)
        if result.tool_calls:
            answer += "\n[tool calls] " + json.dumps([dict(tc) for tc in result.tool_calls], default=str)
        text = self.prompt.format(request=request[-self.max_chars :], answer=answer[: self.max_chars])
        return call.evolve(
            model=self.model,
            messages=({"role": "user", "content": text},),
            params={},
            max_output_tokens=self.max_output_tokens,
            stream=False,
            kind="judge",
            pinned=True,  # the judge names its model: no router re-routes it
            attempt=call.attempt + 1,
            notes={"judge_of": call.model},
        )

    def evaluate(self, call: Call, result: Result) -> GateFlow:
        try:
            reply = yield self.judge_call(call, result)
        except Exception as exc:  # no verdict is a failed check: the cascade escalates rather than trust it
            return Verdict(False, f"judge {self.model} failed: {type(exc).__name__}", self.name)
        said = (reply.text or "").strip().lower()
        if said.startswith(self.pass_word):
            return Verdict(True, "", self.name)
        return Verdict(False, f"judge {self.model} said {said[:40]!r}", self.name)

    def __repr__(self) -> str:
        return f"gates.judge({self.model!r})"


def _content(message: Mapping[str, Any]) -> str:
    from ._call import content_text

    return content_text(message.get("content"))


# ----------------------------------------------------------------------------------------- factories


def json_schema(schema: Mapping[str, Any], *, source: str = "text") -> JsonSchema:
    """The answer is JSON valid against ``schema`` (see :class:`JsonSchema`)."""
    return JsonSchema(schema, source=source)


def regex(pattern: str | re.Pattern[str], flags: int = 0, *, mode: str = "search") -> Regex:
    """The answer matches ``pattern`` (see :class:`Regex`)."""
    return Regex(pattern, flags, mode=mode)


def predicate(fn: GateFn, *, name: str | None = None) -> Predicate:
    """Your own ``fn(call, result) -> bool | Verdict``."""
    return Predicate(fn, name=name)


def judge(model: str, **kwargs: Any) -> Judge:
    """A cheap model judges the answer (see :class:`Judge`)."""
    return Judge(model, **kwargs)


def no_refusal(phrases: Sequence[str] = DEFAULT_REFUSAL_PHRASES) -> NoRefusal:
    """The model did not refuse (provider signals and known refusal openings)."""
    return NoRefusal(phrases)


def not_truncated() -> NotTruncated:
    """The answer was not cut off by the output-token limit."""
    return NotTruncated()


def non_empty() -> NonEmpty:
    """The answer has text or tool calls."""
    return NonEmpty()


def all_of(*gates: Any) -> Gate:
    """Every gate passes (same as ``a & b & c``)."""
    if not gates:
        raise ConfigError("gates", "all_of needs at least one gate")
    return AllOf([as_gate(g, f"gates[{i}]") for i, g in enumerate(gates)])


def any_of(*gates: Any) -> Gate:
    """One gate passes (same as ``a | b | c``)."""
    if not gates:
        raise ConfigError("gates", "any_of needs at least one gate")
    return AnyOf([as_gate(g, f"gates[{i}]") for i, g in enumerate(gates)])


__all__ = [
    "DEFAULT_REFUSAL_PHRASES",
    "JUDGE_PROMPT",
    "AllOf",
    "AnyOf",
    "Gate",
    "GateFlow",
    "JsonSchema",
    "Judge",
    "NoRefusal",
    "NonEmpty",
    "Not",
    "NotTruncated",
    "Predicate",
    "Regex",
    "Verdict",
    "all_of",
    "any_of",
    "as_gate",
    "as_verdict",
    "json_schema",
    "judge",
    "no_refusal",
    "non_empty",
    "not_truncated",
    "predicate",
    "regex",
    "run_gate",
]
