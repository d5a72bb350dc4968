"""Fine-tuning: a new run from a trained one, its vocabulary kept or extended, frozen layers, the origin it
records, resuming it from its own files, and a base run that is only ever read."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.config import load_config
from lstm_textgen.errors import ConfigError, TextgenError
from lstm_textgen.training.finetune import grow
from lstm_textgen.training.plan import check_start
from lstm_textgen.run.rundir import load_run
from lstm_textgen.text.tokenizer import UNK_ID
from lstm_textgen.training.train import train

from conftest import BPE_SETTINGS, TINY_SETTINGS, TINY_TEXT, train_tiny
from helpers import read_state, wait_for

# Some words the tiny base knows (the, cat, sat, a, and, ...), some it never saw; the new ones at different counts.
NEW_TEXT = ("the zebra sat on the sofa . a zebra and a cat , the best of neighbours , ran by the river .\n"
            "a zebra ran .\n") * 25
NEW_WORDS = ["zebra", "ran", "sofa", "neighbours", "river"]  # commonest first, ties in first-seen order
TINY = [a for s in TINY_SETTINGS for a in ("--set", s)]


@pytest.fixture
def new_corpus(tmp_path):
    path = tmp_path / "new.txt"
    path.write_text(NEW_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def base(tiny_run, tmp_path):
    """A copy of the tiny run, without its corpus or token cache: fine-tuning needs neither."""
    path = tmp_path / "base"
    shutil.copytree(tiny_run, path)
    shutil.rmtree(path / "tokens")
    return path


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def layer(run_dir, name):
    return load_run(run_dir).model.get_layer(name).get_weights()


def test_keep_starts_from_the_base_reports_the_unknown_words_and_records_its_origin(base, new_corpus, tmp_path):
    before = snapshot(base)
    run = tmp_path / "mine"
    result = CliRunner().invoke(cli, ["train", str(new_corpus), "--from", str(base), "--run", str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert snapshot(base) == before  # nothing written, not even a lock file
    assert load_run(run).tokenizer.vocab == load_run(base).tokenizer.vocab
    known = load_run(base).tokenizer
    tokens = list(known.split(NEW_TEXT))
    unknown, total = sum(t not in known.index for t in tokens), len(tokens)
    assert (f"vocabulary: the base run's {known.vocab_size} tokens, kept; {unknown / total:.1%} of the corpus's "
            f"{total:,} tokens "
            "are unknown to it and become <unk>; commonest unknown: 'zebra' (75), 'ran' (50)") in result.stderr

    saved = yaml.safe_load((run / "config.yaml").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    base_metrics = json.loads((base / "metrics.json").read_text())
    origin = {"init_from": str(base), "path": str(base.resolve()),
              "config_sha256": hashlib.sha256((base / "config.yaml").read_bytes()).hexdigest(),
              "best_val_perplexity": base_metrics["best_val_perplexity"], "best_epoch": base_metrics["best_epoch"],
              "base_vocab": "keep", "base_vocab_size": known.vocab_size, "added_tokens": 0, "unknown_share": unknown / total}
    assert saved["origin"] == origin and metrics["origin"] == origin
    assert saved["train"]["init_from"] == str(base) and saved["data"]["corpus"] == str(new_corpus)
    info = CliRunner().invoke(cli, ["info", "--run", str(run)])
    assert f"base run     {base} ({base.resolve()}; config sha256 {origin['config_sha256'][:12]}" in info.output
    assert "its vocabulary kept" in info.output


def test_the_base_settings_come_first_and_the_new_ones_go_on_top(base, new_corpus, tmp_path):
    from lstm_textgen.training.plan import training_config

    config = training_config(None, ["train.epochs=7"], {"data.corpus": str(new_corpus), "train.init_from": str(base)})
    assert (config.model.units, config.embedding.dim, config.train.epochs) == (8, 8, 7)  # the base's shape
    assert config.run_dir.name == "new" and config.train.freeze == []  # never the base's own folder


def test_extend_adds_rows_and_columns_and_keeps_every_other_bit_for_bit(base, new_corpus, tmp_path):
    """Embedding and output frozen, so the saved model.keras shows the weights the run started from."""
    run = train_tiny(new_corpus, tmp_path / "mine", f"train.init_from={base}", "data.base_vocab=extend",
                     "train.freeze=[embedding, next_word]")
    old, new = load_run(base), load_run(run)
    assert new.tokenizer.vocab == old.tokenizer.vocab + NEW_WORDS
    (old_matrix,), (matrix,) = layer(base, "embedding"), layer(run, "embedding")
    (old_kernel, old_bias), (kernel, bias) = layer(base, "next_word"), layer(run, "next_word")
    v = old.tokenizer.vocab_size
    assert np.array_equal(matrix[:v], old_matrix) and np.array_equal(kernel[:, :v], old_kernel)
    assert np.array_equal(bias[:v], old_bias)
    assert np.array_equal(matrix[v:], np.repeat(old_matrix[UNK_ID:UNK_ID + 1], 5, axis=0))  # each starts as <unk>
    assert np.array_equal(kernel[:, v:], np.repeat(old_kernel[:, UNK_ID:UNK_ID + 1], 5, axis=1))
    counts = np.array([75, 50, 25, 25, 25], float)  # zebra, ran, sofa, neighbours, river
    np.testing.assert_allclose(bias[v:], old_bias[UNK_ID] + np.log(counts / counts.sum()), rtol=1e-6)
    assert not np.array_equal(layer(run, "lstm_1")[0], layer(base, "lstm_1")[0])  # the rest trained


def test_grow_keeps_a_tied_kernel_the_embedding_transposed():
    rng = np.random.default_rng(0)
    matrix, bias = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    grown = grow({"embedding": [matrix], "next_word": [matrix.T.copy(), bias]}, [3, 1], tied=True)
    (new_matrix,), (kernel, new_bias) = grown["embedding"], grown["next_word"]
    assert np.array_equal(kernel, new_matrix.T) and np.array_equal(new_matrix[:6], matrix)
    assert new_bias.dtype == np.float32 and np.array_equal(new_bias[:6], bias)
    np.testing.assert_allclose(new_bias[6:], bias[UNK_ID] + np.log([0.75, 0.25]), rtol=1e-6)


def test_a_tied_run_extended_stays_tied_through_training_and_freezing(base, new_corpus, tmp_path):
    corpus = tmp_path / "old.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    tied_base = train_tiny(corpus, tmp_path / "tied_base", "model.tie_weights=true")
    run = train_tiny(new_corpus, tmp_path / "mine", f"train.init_from={tied_base}", "model.tie_weights=true",
                     "data.base_vocab=extend", "train.stateful=true", "train.freeze=[embedding]")  # a training copy
    (matrix,), (kernel, bias) = layer(run, "embedding"), layer(run, "next_word")
    (old_matrix,), (_, old_bias) = layer(tied_base, "embedding"), layer(tied_base, "next_word")
    v = len(old_matrix)
    assert matrix.shape[0] == v + 5 and np.array_equal(kernel, matrix.T)
    assert np.array_equal(matrix[:v], old_matrix)  # frozen through the tied, stateful training copy
    assert not np.array_equal(bias[:v], old_bias)  # the output bias trained


@pytest.mark.parametrize("step", ["train.unrolled=true", "train.unrolled=false"], ids=["unrolled", "keras"])
def test_frozen_layers_keep_the_base_weights_under_either_step(base, new_corpus, tmp_path, step):
    run = train_tiny(new_corpus, tmp_path / "mine", f"train.init_from={base}", "train.freeze=[embedding, lstm_1]",
                     step, "train.epochs=2")
    for name in ("embedding", "lstm_1"):
        assert all(np.array_equal(a, b) for a, b in zip(layer(run, name), layer(base, name))), name
    for name in ("dense", "next_word"):
        assert not np.array_equal(layer(run, name)[0], layer(base, name)[0]), name
    info = CliRunner().invoke(cli, ["info", "--run", str(run)]).output
    assert re.search(r"embedding +Embedding .*, frozen\n", info) and re.search(r"lstm_1 +LSTM .*, frozen\n", info)
    assert not re.search(r"dense +Dense .*, frozen", info)


@pytest.mark.parametrize("level", ["char", "whitespace"])
def test_char_and_whitespace_levels_fine_tune(tmp_path, new_corpus, level):
    corpus = tmp_path / "old.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    base = train_tiny(corpus, tmp_path / "base", f"data.level={level}")
    run = train_tiny(new_corpus, tmp_path / "mine", f"data.level={level}", f"train.init_from={base}",
                     "data.base_vocab=extend")
    old, new = load_run(base).tokenizer, load_run(run).tokenizer
    assert new.vocab[:old.vocab_size] == old.vocab and len(new.vocab) > old.vocab_size
    assert set(new.vocab[old.vocab_size:]) == {t for t in new.split(NEW_TEXT)} - set(old.vocab)


def test_a_bpe_run_fine_tunes_with_its_merges_and_refuses_extend(bpe_run, new_corpus, tmp_path):
    run = train_tiny(new_corpus, tmp_path / "mine", *BPE_SETTINGS, f"train.init_from={bpe_run}")
    assert load_run(run).tokenizer.vocab_size == load_run(bpe_run).tokenizer.vocab_size
    with pytest.raises(ConfigError, match="data.base_vocab=extend adds words to a word, whitespace or char"):
        train_tiny(new_corpus, tmp_path / "other", *BPE_SETTINGS, f"train.init_from={bpe_run}",
                   "data.base_vocab=extend")


def test_the_library_takes_init_from_and_refuses_a_shape_that_differs(base, new_corpus, tmp_path):
    config = load_config(None, [f"data.corpus={new_corpus}", f"train.run_dir={tmp_path / 'mine'}", *TINY_SETTINGS])
    run = train(config, init_from=base)
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["init_from"] == str(base)
    other = load_config(None, [f"data.corpus={new_corpus}", f"train.run_dir={tmp_path / 'other'}", *TINY_SETTINGS,
                               "model.units=9", "data.lowercase=false", "model.dropout=0.3"])
    with pytest.raises(ConfigError) as caught:
        train(other, init_from=base)
    assert "differ from the base run's in data.lowercase (True -> False), model.units (8 -> 9);" in str(caught.value)
    assert not (tmp_path / "other").exists()


def test_a_fine_tuned_run_may_set_its_own_dropouts(base, new_corpus, tmp_path):
    run = train_tiny(new_corpus, tmp_path / "mine", f"train.init_from={base}", "model.input_dropout=0.5",
                     "model.dense_dropout=0.3")
    assert load_run(base).model.get_layer("lstm_1").dropout == 0.1
    assert load_run(run).model.get_layer("lstm_1").dropout == 0.5
    assert load_run(run).model.get_layer("dense_dropout").rate == 0.3


@pytest.mark.parametrize("settings, message", [
    (["train.freeze=[embedding]"], "train.freeze is about a base run's weights and vocabulary: it needs "
                                   "train.init_from"),
    (["data.base_vocab=extend"], "data.base_vocab=extend is about a base run's"),
    (["train.init_from=b", "train.freeze=[lstm_2, dense]"], "train.freeze names 'lstm_2', which the model does not "
                                                            "have; its layers with weights are embedding, lstm_1, "
                                                            "dense, next_word"),
    (["train.init_from=b", "train.freeze=[embedding, lstm_1, dense, next_word]"], "nothing would train"),
    (["train.init_from=runs/b", "train.run_dir=runs/b/inside"], "is the base run runs/b (or inside it)"),
])
def test_what_cannot_start_is_refused_before_anything_is_read(settings, message):
    with pytest.raises(TextgenError) as caught:
        check_start(load_config(None, settings))
    assert message in str(caught.value)


def test_a_resumed_fine_tuned_run_needs_only_its_own_files(base, new_corpus, tmp_path):
    run = train_tiny(new_corpus, tmp_path / "mine", f"train.init_from={base}", "data.base_vocab=extend")
    vocab = load_run(run).tokenizer.vocab
    shutil.move(base, tmp_path / "moved")
    shutil.rmtree(run / "tokens")  # the corpus is encoded again, in the run's own (extended) vocabulary
    train_tiny(new_corpus, run, f"train.init_from={base}", "data.base_vocab=extend", "train.epochs=2")
    assert load_run(run).tokenizer.vocab == vocab
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["origin"]["init_from"] == str(base)
    with pytest.raises(TextgenError, match="config differs in train.freeze"):
        train_tiny(new_corpus, run, f"train.init_from={base}", "data.base_vocab=extend", "train.epochs=3",
                   "train.freeze=[embedding]")


def test_a_fine_tuned_run_is_the_base_of_another(base, new_corpus, tmp_path):
    first = train_tiny(new_corpus, tmp_path / "first", f"train.init_from={base}", "data.base_vocab=extend",
                       "train.freeze=[embedding]")
    result = CliRunner().invoke(cli, ["train", str(new_corpus), "--from", str(first), "--run", str(tmp_path / "second")])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "second" / "config.yaml").read_text())
    assert saved["train"]["freeze"] == [] and saved["data"]["base_vocab"] == "keep"  # the first run's own choices
    assert saved["origin"]["init_from"] == str(first) and saved["model"]["units"] == 8
    assert load_run(tmp_path / "second").tokenizer.vocab == load_run(first).tokenizer.vocab


@pytest.mark.slow
def test_kill_9_mid_fine_tune_resumes_without_the_base(base, new_corpus, tmp_path):
    run = tmp_path / "mine"
    settings = [*TINY_SETTINGS, "train.epochs=3", "train.steps_per_epoch=30", "train.backup_every_steps=7"]
    args = [sys.executable, "-m", "lstm_textgen", "train", str(new_corpus), "--from", str(base), "--run", str(run),
            *[a for s in settings for a in ("--set", s)]]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for(lambda: read_state(run).get("global_step", 0) >= 7, proc)
    proc.kill()
    proc.wait()
    shutil.move(base, tmp_path / "moved")  # the rerun must not need it
    rerun = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "Resuming" in rerun.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
