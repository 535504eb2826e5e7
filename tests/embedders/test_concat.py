"""ConcatEmbedder: parts side by side, each weighted equally, unit rows, a name that lists the parts."""

from __future__ import annotations

import numpy as np
import pytest

from costkit import ConfigError
from costkit.embedders import CallableEmbedder, ConcatEmbedder


def constant(value: list[float], name: str) -> CallableEmbedder:
    return CallableEmbedder(
        lambda texts: np.tile(np.array(value, dtype=np.float32), (len(texts), 1)), dim=len(value), name=name
    )


def test_parts_are_normalized_then_joined_into_unit_rows() -> None:
    emb = ConcatEmbedder(constant([3.0, 4.0], "a"), constant([0.0, 0.0, 2.0], "b"))
    assert emb.dim == 5 and emb.name == "concat(a+b)"
    out = emb(["x", "y"])
    assert out.shape == (2, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], np.array([0.6, 0.8, 0.0, 0.0, 1.0]) / np.sqrt(2), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [1.0, 1.0], rtol=1e-6)


async def test_the_async_path_awaits_parts_that_embed_over_the_network() -> None:
    class Remote:
        name, dim = "remote", 2
        awaited = 0

        def __call__(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("the async path must await aembed")

        async def aembed(self, texts: list[str]) -> np.ndarray:
            Remote.awaited += 1
            return np.ones((len(texts), 2), dtype=np.float32)

    emb = ConcatEmbedder(Remote(), constant([1.0, 0.0], "local"))
    out = await emb.aembed(["x"])
    assert Remote.awaited == 1
    np.testing.assert_allclose(out[0], np.array([0.5**0.5, 0.5**0.5, 1.0, 0.0]) / np.sqrt(2), rtol=1e-6)


def test_one_part_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        ConcatEmbedder(constant([1.0], "a"))
    assert info.value.field == "parts"
