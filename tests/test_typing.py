"""costkit.wrap returns the client's own type: editors complete the SDK's methods and type checkers
check their arguments (mypy --strict on a user's file)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

USER_FILE = textwrap.dedent(
    """
    import anthropic
    import openai

    import costkit

    client = costkit.wrap(openai.OpenAI(api_key="k"), sink=None)
    reveal_type(client)
    reply = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    reveal_type(reply)
    aclient = costkit.wrap(anthropic.AsyncAnthropic(api_key="k"), sink=None)
    reveal_type(aclient)
    client.chat.completions.create(model="gpt-4o", mesages=[{"role": "user", "content": "hi"}])
    """
)


@pytest.mark.slow
def test_mypy_strict_sees_the_sdks_own_types_through_wrap(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    path = tmp_path / "user_app.py"
    path.write_text(USER_FILE)
    out, _err, _status = api.run(["--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), str(path)])
    revealed = [line.split("Revealed type is ")[1] for line in out.splitlines() if "Revealed type is" in line]
    assert revealed == ['"openai._client.OpenAI"', '"openai.types.chat.chat_completion.ChatCompletion"',
                        '"anthropic._client.AsyncAnthropic"']
    assert 'Unexpected keyword argument "mesages"' in out  # a typo in a wrapped call is caught
