"""Each export's README: its load-and-step example runs as written in the export's folder, and it says what the
check measured."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from lstm_textgen.export.folder import read_manifest
from lstm_textgen.export.readme import readme


@pytest.mark.parametrize("fmt", ["savedmodel", "tflite", "onnx"])
def test_the_example_runs_in_the_export_folder(fmt, exports):
    out = exports[fmt].out
    text = (out / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = code.replace("[ID]", "[3]").replace("[[ID1, ID2, ID3]]", "[[2, 3, 4]]")
    code += "\nassert probabilities.shape == (1, %d), probabilities.shape\nprint('ok')\n" % read_manifest(out)["vocab_size"]
    result = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_it_names_the_files_the_signatures_and_the_check(exports):
    done = exports["onnx"]
    manifest = read_manifest(done.out)
    text = readme(manifest, done.sizes)
    assert "- `step.onnx`:" in text and "- `window.onnx`:" in text and "`tokenizer.json`" in text
    assert "| `step` | `token` int32 (any), `h0` float32 (any, 8), `c0` float32 (any, 8) |" in text
    assert f"perplexity {done.figures.perplexity:.3f} against the run's {done.figures.run_perplexity:.3f}" in text
