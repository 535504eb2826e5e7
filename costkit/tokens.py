"""Token counting offline: tiktoken encodings built from the BPE files LiteLLM's wheel bundles.

tiktoken downloads its BPE files on first use. LiteLLM's wheel already ships cl100k_base,
o200k_base and p50k_base (``litellm/litellm_core_utils/tokenizers/``, each file named by the
SHA-1 of its download URL), so the encodings are built from those files directly: the package
is located with ``importlib.util.find_spec`` (litellm is not imported), each file is checked
against tiktoken's published SHA-256, and nothing is downloaded or written to tiktoken's cache.
``TIKTOKEN_CACHE_DIR`` is left alone.

If the files are missing or damaged, counts fall back to an estimate of ``ceil(len(text) / 4)``
(OpenAI's rule of thumb for English) and one warning says so.

Chat overhead follows OpenAI's cookbook ("How to count tokens with tiktoken"): 3 tokens per
message, 1 more for a ``name``, 3 to prime the reply; tool schemas use the cookbook's per-function
and per-property constants. For other providers' models these are estimates (cl100k_base).
"""

from __future__ import annotations

import binascii
import hashlib
import importlib.util
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from ._warn import warn_once
from .errors import CostkitError

if TYPE_CHECKING:
    import tiktoken

_ENDOFTEXT: Final = "<|endoftext|>"
_FIM_PREFIX: Final = "<|fim_prefix|>"
_FIM_MIDDLE: Final = "<|fim_middle|>"
_FIM_SUFFIX: Final = "<|fim_suffix|>"
_ENDOFPROMPT: Final = "<|endofprompt|>"

_R50K_PAT: Final = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
_CL100K_PAT: Final = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
_O200K_PAT: Final = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

_URL_BASE: Final = "https://openaipublic.blob.core.windows.net/encodings/"

# name -> (tiktoken's published SHA-256 of the file, pat_str, special tokens, explicit vocabulary size)
_SPECS: Final[dict[str, tuple[str, str, dict[str, int], int | None]]] = {
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        _O200K_PAT,
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
        None,
    ),
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        _CL100K_PAT,
        {_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259, _FIM_SUFFIX: 100260, _ENDOFPROMPT: 100276},
        None,
    ),
    "p50k_base": (
        "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
        _R50K_PAT,
        {_ENDOFTEXT: 50256},
        50281,
    ),
}

DEFAULT_ENCODING: Final = "cl100k_base"
CHARS_PER_TOKEN_ESTIMATE: Final = 4  # the fallback when no BPE file is available

# Model name prefixes (provider prefix removed) -> encoding. Longest match wins.
_PREFIX_TO_ENCODING: Final = (
    ("ft:gpt-4o", "o200k_base"),
    ("ft:gpt-4.1", "o200k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("ft:gpt-3.5", "cl100k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-oss", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("codex-", "o200k_base"),
    ("computer-use", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("text-embedding-", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
    ("text-davinci-", "p50k_base"),
    ("code-davinci-", "p50k_base"),
    ("code-cushman-", "p50k_base"),
)
_SORTED_PREFIXES: Final = tuple(sorted(_PREFIX_TO_ENCODING, key=lambda p: -len(p[0])))

# OpenAI's chat framing (cookbook): <|start|>{role}\n{content}<|end|>\n per message, reply primed with 3.
TOKENS_PER_MESSAGE: Final = 3
TOKENS_PER_NAME: Final = 1
REPLY_PRIMING_TOKENS: Final = 3
# An image part: 85 tokens at detail "low"; 765 for a 1024x1024 image at "high"/"auto" (85 + 4 tiles x 170),
# used when the size is unknown.
IMAGE_TOKENS_LOW: Final = 85
IMAGE_TOKENS_DEFAULT: Final = 765
# Per tool call in an assistant message: framing around the name and the JSON arguments (estimate).
TOKENS_PER_TOOL_CALL: Final = 3


class EncodingUnavailable(CostkitError, LookupError):
    """No bundled BPE file for this encoding (litellm missing or damaged); counts are estimated instead."""


_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding | None] = {}
_model_encoding: dict[str, str] = {}


def tokenizer_dir() -> str | None:
    """LiteLLM's bundled tokenizer folder, located without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "litellm_core_utils", "tokenizers")
        if os.path.isdir(path):
            return path
    return None


def bundled_bpe_path(name: str) -> str | None:
    """The bundled file for encoding ``name`` (named by the SHA-1 of its download URL), if present."""
    folder = tokenizer_dir()
    if folder is None:
        return None
    key = hashlib.sha1(f"{_URL_BASE}{name}.tiktoken".encode()).hexdigest()
    path = os.path.join(folder, key)
    return path if os.path.isfile(path) else None


def _read_ranks(path: str, expected_sha256: str) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file (base64 token, rank per line) after checking its SHA-256.

    Read here rather than with ``tiktoken.load.load_tiktoken_bpe``, which would also copy the
    file into tiktoken's cache directory (a side effect a library should not have).
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"{path}: SHA-256 does not match tiktoken's published hash")
    decode = binascii.a2b_base64  # ~40% faster than base64.b64decode per line; malformed -> ValueError
    return {decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name`` (o200k_base, cl100k_base, p50k_base), built once from the bundled file.

    Raises :class:`EncodingUnavailable` when the file is missing or damaged.
    """
    if name in _encodings:
        enc = _encodings[name]
        if enc is None:
            raise EncodingUnavailable(f"tiktoken encoding {name!r} is not available offline")
        return enc
    if name not in _SPECS:
        raise EncodingUnavailable(f"unknown encoding {name!r}; bundled: {', '.join(_SPECS)}")
    with _lock:
        if name not in _encodings:
            _encodings[name] = _build(name)
    return get_encoding(name)


def _build(name: str) -> tiktoken.Encoding | None:
    sha256, pat_str, special, n_vocab = _SPECS[name]
    path = bundled_bpe_path(name)
    if path is None:
        return None
    try:
        import tiktoken

        ranks = _read_ranks(path, sha256)
        return tiktoken.Encoding(
            name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special, explicit_n_vocab=n_vocab
        )
    except (OSError, ValueError, ImportError) as exc:
        warn_once(f"tokens:bad-bpe:{name}", f"costkit.tokens: could not load {name} from {path}: {exc}")
        return None


def encoding_name_for_model(model: str | None) -> str:
    """Which encoding counts ``model``: o200k for gpt-4o/4.1/5 and o-series, cl100k for gpt-4/3.5 and others."""
    if not model:
        return DEFAULT_ENCODING
    cached = _model_encoding.get(model)
    if cached is not None:
        return cached
    bare = model.rsplit("/", 1)[-1].lower()
    name = DEFAULT_ENCODING
    for prefix, encoding in _SORTED_PREFIXES:
        if bare.startswith(prefix):
            name = encoding
            break
    _model_encoding[model] = name
    return name


def encoding_for_model(model: str | None = None) -> tiktoken.Encoding:
    """The tiktoken encoding for ``model`` (cl100k_base, the estimate, for non-OpenAI models).

    Raises :class:`EncodingUnavailable` if the bundled BPE file is missing; the ``count_*``
    functions never raise and estimate instead.
    """
    return get_encoding(encoding_name_for_model(model))


def _encoder(model: str | None) -> tiktoken.Encoding | None:
    name = encoding_name_for_model(model)
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    try:
        return get_encoding(name)
    except EncodingUnavailable:
        warn_once(
            f"tokens:unavailable:{name}",
            f"costkit.tokens: the {name} BPE file bundled with litellm was not found; token counts are "
            f"estimated as ceil(characters / {CHARS_PER_TOKEN_ESTIMATE}). Install litellm to count exactly.",
        )
        return None


def estimate_tokens(text: str) -> int:
    """The fallback estimate: ``ceil(len(text) / 4)``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


def count_text(text: str | None, model: str | None = None) -> int:
    """Tokens in ``text`` for ``model`` (special-token text such as ``<|endoftext|>`` counts as plain text)."""
    if not text:
        return 0
    enc = _encoder(model)
    if enc is None:
        return estimate_tokens(text)
    return len(enc.encode_ordinary(text))


def _count_value(value: Any, model: str | None) -> int:
    if value is None:
        return 0
    if isinstance(value, str):
        return count_text(value, model)
    return count_text(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str), model)


def _count_content(content: Any, model: str | None) -> int:
    """A message's content: a str, or a list of parts (text, image, audio/file parts estimated)."""
    if content is None:
        return 0
    if isinstance(content, str):
        return count_text(content, model)
    if not isinstance(content, list | tuple):
        return _count_value(content, model)
    total = 0
    for part in content:
        if isinstance(part, str):
            total += count_text(part, model)
            continue
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        text = part.get("text")
        if isinstance(text, str):
            total += count_text(text, model)
        elif kind in ("image_url", "image", "input_image"):
            image = part.get("image_url")
            detail = image.get("detail") if isinstance(image, Mapping) else part.get("detail")
            total += IMAGE_TOKENS_LOW if detail == "low" else IMAGE_TOKENS_DEFAULT
        elif kind == "tool_result":
            total += _count_content(part.get("content"), model)
        elif kind == "tool_use":
            total += TOKENS_PER_TOOL_CALL + count_text(str(part.get("name") or ""), model)
            total += _count_value(part.get("input"), model)
        elif "content" in part:
            total += _count_content(part.get("content"), model)
    return total


def _count_tool_calls(tool_calls: Any, model: str | None) -> int:
    total = 0
    if not isinstance(tool_calls, list | tuple):
        return _count_value(tool_calls, model)
    for call in tool_calls:
        if not isinstance(call, Mapping):
            continue
        function = call.get("function")
        function = function if isinstance(function, Mapping) else call
        total += TOKENS_PER_TOOL_CALL
        total += count_text(str(function.get("name") or ""), model)
        arguments = function.get("arguments")
        total += count_text(arguments, model) if isinstance(arguments, str) else _count_value(arguments, model)
    return total


def count_messages(messages: Iterable[Mapping[str, Any]], model: str | None = None) -> int:
    """Prompt tokens of a chat request, before the call (OpenAI's framing; an estimate for other providers).

    Every string field of a message is counted (role, content, name, tool_call_id), as OpenAI's
    cookbook does; list contents count their text parts (images at a fixed estimate); tool calls
    count their name and arguments.
    """
    total = 0
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += _count_content(value, model)
            elif key == "tool_calls":
                total += _count_tool_calls(value, model)
            elif key == "function_call":
                total += _count_tool_calls([value], model)
            elif isinstance(value, str):
                total += count_text(value, model)
                if key == "name":
                    total += TOKENS_PER_NAME
    return total + REPLY_PRIMING_TOKENS


# The cookbook's tool-schema constants ("Counting tokens for chat completions with tool calls").
_TOOL_CONSTANTS_O200K: Final = {"func_init": 7, "prop_init": 3, "prop_key": 3, "enum_init": -3, "enum_item": 3}
_TOOL_CONSTANTS_CL100K: Final = {"func_init": 10, "prop_init": 3, "prop_key": 3, "enum_init": -3, "enum_item": 3}
TOOLS_END_TOKENS: Final = 12


def _strip_period(text: str) -> str:
    return text[:-1] if text.endswith(".") else text


def count_tools(tools: Iterable[Mapping[str, Any]] | None, model: str | None = None) -> int:
    """Prompt tokens the tool schemas add (OpenAI's cookbook method; an estimate elsewhere).

    Accepts OpenAI tools (``{"type": "function", "function": {...}}``), bare function dicts and
    Anthropic tools (``{"name", "description", "input_schema"}``). Nested object properties are
    counted as the JSON of their schema.
    """
    if not tools:
        return 0
    tools = list(tools)
    if not tools:
        return 0
    consts = _TOOL_CONSTANTS_O200K if encoding_name_for_model(model) == "o200k_base" else _TOOL_CONSTANTS_CL100K
    total = 0
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        function = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
        assert isinstance(function, Mapping)
        name = str(function.get("name") or tool.get("type") or "")
        description = _strip_period(str(function.get("description") or ""))
        total += consts["func_init"] + count_text(f"{name}:{description}", model)
        schema = function.get("parameters", function.get("input_schema"))
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        if not isinstance(properties, Mapping) or not properties:
            continue
        total += consts["prop_init"]
        for key, prop in properties.items():
            total += consts["prop_key"]
            prop = prop if isinstance(prop, Mapping) else {}
            enum = prop.get("enum")
            if isinstance(enum, list | tuple):
                total += consts["enum_init"]
                for item in enum:
                    total += consts["enum_item"] + count_text(str(item), model)
            p_type = prop.get("type", "")
            p_type = "|".join(map(str, p_type)) if isinstance(p_type, list | tuple) else str(p_type)
            p_desc = _strip_period(str(prop.get("description") or ""))
            total += count_text(f"{key}:{p_type}:{p_desc}", model)
            nested = {k: v for k, v in prop.items() if k in ("properties", "items", "anyOf", "oneOf", "allOf")}
            if nested:
                total += _count_value(nested, model)
    return total + TOOLS_END_TOKENS


def count_request(
    messages: Iterable[Mapping[str, Any]], model: str | None = None, tools: Iterable[Mapping[str, Any]] | None = None
) -> int:
    """``count_messages`` + ``count_tools``: the pre-call estimate of a request's prompt tokens."""
    return count_messages(messages, model) + count_tools(tools, model)


__all__ = [
    "CHARS_PER_TOKEN_ESTIMATE",
    "DEFAULT_ENCODING",
    "EncodingUnavailable",
    "bundled_bpe_path",
    "count_messages",
    "count_request",
    "count_text",
    "count_tools",
    "encoding_for_model",
    "encoding_name_for_model",
    "estimate_tokens",
    "get_encoding",
    "tokenizer_dir",
]
