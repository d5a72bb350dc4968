"""A run as people read it: info's aligned summary (every figure from metrics.json, the layers, the files and
their sizes) and its embedding coverage."""
import json
import shutil

import pytest

from lstm_textgen.run.show import format_size

from helpers import invoke


@pytest.mark.parametrize("n, shown", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1_234_567, "1.2 MB"),
                                      (5 * 10**12, "5000.0 GB")])
def test_sizes_in_powers_of_a_thousand(n, shown):
    assert format_size(n) == shown


def test_info_prints_the_summary(tiny_run):
    result = invoke("info", "--run", tiny_run, catch_exceptions=False)
    assert result.exit_code == 0
    text = result.output
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for fragment in (f"corpus       {metrics['corpus']}", "word level", f"vocabulary {metrics['vocab_size']:,}",
                     f"model        {metrics['parameters']:,} parameters, objective sequence, window 5",
                     "lstm_1", "LSTM", "8 units", "next_word", "softmax", "embedding      Embedding",
                     f"training     2 of 2 epochs; best epoch {metrics['best_epoch']}, "
                     f"val perplexity {metrics['best_val_perplexity']:,.2f}, "
                     f"{metrics['best_val_bits_per_char']:.3f} bits per character",
                     f"{metrics['tokens_per_second']:,.0f} tokens/s", "learned from scratch",
                     "files", "model.keras", "checkpoints/", "history.csv", "tokens/", "curves.png", "total"):
        assert fragment in text, fragment
    size = (tiny_run / "model.keras").stat().st_size
    assert f"{size / 1000:.1f} kB" in next(line for line in text.splitlines() if "model.keras" in line)


def test_info_shows_embedding_coverage(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["embedding_coverage"] = {"path": "glove.txt", "vocab_share": 0.941, "token_share": 0.987}
    (run / "metrics.json").write_text(json.dumps(metrics))
    output = invoke("info", "--run", run).output
    assert "embedding    glove.txt: 94.1% of the vocabulary, 98.7% of corpus tokens" in output
