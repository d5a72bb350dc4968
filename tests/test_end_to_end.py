"""The command line through click's CliRunner: one-line errors, and train -> generate -> evaluate -> reload."""
import json
import shutil
import subprocess
import sys

import pytest

from lstm_textgen import TextgenError, generate, load_config, load_run, train

from conftest import REPO, SHARED_DATA, TINY_SETTINGS
from helpers import assert_one_line_error, invoke


def tiny_train_args(corpus, run_dir):
    return ["train", corpus, "--run", run_dir, *[a for s in TINY_SETTINGS for a in ("--set", s)]]


def test_help_and_version():
    root = invoke("--help")
    assert root.exit_code == 0
    for command in ("train", "generate", "suggest", "evaluate", "plot", "info", "runs"):
        summary = next(line for line in root.output.splitlines() if line.strip().startswith(command + " "))
        assert not summary.rstrip().endswith("..."), summary  # every summary fits, none cut off
    for command in ("train", "generate", "evaluate"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output
    from lstm_textgen import __version__
    assert invoke("--version").output.strip() == f"lstm-textgen, version {__version__}"


@pytest.mark.parametrize("content, fragments", [
    (None, ["c.txt does not exist"]),
    (b"", ["holds no text"]),
    (b"just three words", ["too short for one training window"]),
    (b"ok \xff here" * 10, ["not UTF-8", "byte offset 3"]),
])
def test_train_corpus_errors(tmp_path, content, fragments):
    corpus = tmp_path / "c.txt"
    if content is not None:
        corpus.write_bytes(content)
    assert_one_line_error(invoke(*tiny_train_args(corpus, tmp_path / "run")), *fragments)
    assert not (tmp_path / "run" / "model.keras").exists()


@pytest.mark.parametrize("setting, fragments", [
    ("model.unit=3", ["unknown config key 'model.unit'", "did you mean 'model.units'"]),
    ("train.epochs=many", ["train.epochs must be int, got 'many'"]),
    ("data.window_size=-4", ["data.window_size must be >= 1, got -4"]),
    ("model.bidirectional=true", ["model.bidirectional needs model.objective=last"]),
    ("data.level=bpe,embedding.path=../shared/data/glove.6B.50d.top2445.txt",
     ["embedding.path gives word vectors, which do not apply to data.level=bpe's subword tokens",
      "set --set embedding.path=null"]),
    ("data.level=bpe,data.max_vocab=100", ["data.max_vocab is the vocabulary size data.level=bpe learns up to: at least 258"]),
])
def test_train_config_errors(tiny_corpus, tmp_path, setting, fragments):
    result = invoke(*tiny_train_args(tiny_corpus, tmp_path / "run"), *[a for s in setting.split(",")
                                                                       for a in ("--set", s)])
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_bpe_run_end_to_end_through_the_cli(tmp_path):
    """train, generate, suggest, evaluate and info on a bpe run, with text the word level cannot spell."""
    corpus, held_out = tmp_path / "corpus.txt", tmp_path / "held_out.txt"
    corpus.write_text("Zoë met the café owner in Kraków; they said «dzień dobry» 🙂\n" * 60, encoding="utf-8")
    held_out.write_text("Zoë met Bartholomew in Kraków 🙂\n" * 10, encoding="utf-8")
    run = tmp_path / "runs" / "bpe"
    trained = invoke(*tiny_train_args(corpus, run), "--set", "data.level=bpe", "--set", "data.max_vocab=320",
                     "--set", "data.lowercase=false")
    assert trained.exit_code == 0, trained.output
    generated = invoke("generate", "--run", run, "--seed", "Zoë met Ŧhe", "-n", "7", "--random-seed", "1", "--jsonl")
    sample = json.loads(generated.stdout)
    assert generated.exit_code == 0 and sample["unknown_seed_words"] == [] and "not in the voc" not in generated.stderr
    from lstm_textgen.generation.sample import generate_many

    same = generate_many(run, ["Zoë met Ŧhe"], 1, 1, length=7)[0]
    assert len(same.tokens) == 7 and same.text == sample["text"]  # -n counts tokens
    suggested = json.loads(invoke("suggest", "--run", run, "Zoë met the", "-k", "3", "--json").stdout)
    assert len(suggested["next"]) == 3 and suggested["unknown_seed_words"] == []
    report = json.loads(invoke("evaluate", "--run", run, held_out, "--json").stdout)
    assert report["oov_rate"] == 0 and report["unk_char_share"] == 0 and report["bits_per_char"] > 0
    info = invoke("info", "--run", run)
    vocabulary = load_run(run).tokenizer.vocab_size  # 320 at most: this text has fewer pairs to merge
    assert info.exit_code == 0 and f"bpe level, case kept, vocabulary {vocabulary}" in info.stdout
    assert "bits per character" in info.stdout


def test_train_bad_config_file(tiny_corpus, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  units: [\n")
    assert_one_line_error(invoke("train", tiny_corpus, "--config", bad), "not valid YAML")


@pytest.mark.parametrize("make_run, fragment", [
    (lambda d: d / "nowhere", "does not exist"),
    (lambda d: d, "is not an lstm-textgen run directory"),
])
def test_generate_and_evaluate_need_a_run(tmp_path, tiny_corpus, make_run, fragment):
    run = make_run(tmp_path)
    assert_one_line_error(invoke("generate", "--run", run, "--seed", "the"), fragment)
    assert_one_line_error(invoke("evaluate", "--run", run, tiny_corpus), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "0"], "--temperature must be > 0"),
    (["--temperature", "-1"], "--temperature must be > 0"),
    (["--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["-n", "-1"], "must be >= 0"),
])
def test_generate_setting_errors(tiny_run, args, fragment):
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seed", "the cat", *args), fragment)


def test_missing_model_keras_is_named(tiny_run, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(tiny_run, run)
    (run / "model.keras").unlink()
    assert_one_line_error(invoke("generate", "--run", run, "--seed", "the"), "model.keras is missing",
                          f"cp {run / 'checkpoints' / 'epoch_002.keras'} {run / 'model.keras'}")


def test_generate_is_reproducible_and_streams_the_seed(tiny_run):
    first = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "15", "--random-seed", "5")
    again = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "15", "--random-seed", "5")
    assert first.exit_code == 0 and first.output == again.output
    assert first.output.startswith("the cat")
    assert "<unk>" not in first.output and "<pad>" not in first.output


def test_unknown_seed_words_are_named_on_stderr(tiny_run):
    result = invoke("generate", "--run", tiny_run, "--seed", "the zebra cat", "-n", "3", "--random-seed", "1")
    assert result.exit_code == 0
    assert "not in the vocabulary, fed as <unk>: zebra" in result.stderr


def test_evaluate_reports_and_json(tiny_run, tiny_corpus):
    text = invoke("evaluate", "--run", tiny_run, tiny_corpus)
    assert text.exit_code == 0, text.output
    for label in ("perplexity", "top-1 accuracy", "top-5 accuracy", "OOV rate", "unigram perplexity"):
        assert label in text.output
    report = json.loads(invoke("evaluate", "--run", tiny_run, tiny_corpus, "--json").stdout)
    assert 1 < report["perplexity"] < report["unigram_perplexity"] * 10
    assert 0 <= report["top1_accuracy"] <= report["top5_accuracy"] <= 1
    assert report["oov_rate"] == 0.0


def test_evaluate_counts_oov(tiny_run, tmp_path):
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("the zebra sat on the mat . " * 10)
    report = json.loads(invoke("evaluate", "--run", tiny_run, held_out, "--json").stdout)
    assert report["oov_rate"] == pytest.approx(10 / 70)


def test_cli_starts_without_tensorflow():
    code = ("import sys; from lstm_textgen.cli import cli; "
            "assert not any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow
def test_end_to_end_on_real_shakespeare(tmp_path):
    corpus = tmp_path / "shakespeare.txt"
    corpus.write_text((SHARED_DATA / "tinyshakespeare.txt").read_text()[:60000])
    run = tmp_path / "runs" / "bard"
    result = invoke("train", corpus, "--config", REPO / "configs" / "demo.yaml", "--run", run,
                    "--set", "train.epochs=2", "--set", "model.units=32", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"Saved run to {run}" in result.stdout

    out = invoke("generate", "--run", run, "--seed", "First Citizen", "-n", "40", "--random-seed", "3",
                 catch_exceptions=False)
    assert out.exit_code == 0 and out.stdout.startswith("First Citizen") and len(out.stdout.split()) > 20

    held_out = tmp_path / "held_out.txt"
    held_out.write_text((SHARED_DATA / "tinyshakespeare.txt").read_text()[-20000:])
    report = json.loads(invoke("evaluate", "--run", run, held_out, "--json", catch_exceptions=False).stdout)
    assert report["perplexity"] < report["unigram_perplexity"] * 1.5  # learned at least roughly the unigram

    loaded = load_run(run)  # the library API on the same run
    ids = loaded.tokenizer.encode("the people")
    assert loaded.tokenizer.decode(ids) == "the people"
    assert loaded.model.output_shape[-1] == loaded.tokenizer.vocab_size
    text = generate(loaded, "the people", length=10, random_seed=3)
    assert text == generate(run, "the people", length=10, random_seed=3)
    with pytest.raises(TextgenError):
        generate(loaded, "the people", temperature=0)


def test_library_train_through_the_public_api(tiny_corpus, tmp_path):
    run = train(load_config(None, [f"data.corpus={tiny_corpus}", f"train.run_dir={tmp_path / 'r'}", *TINY_SETTINGS]))
    assert (run / "model.keras").is_file()


def test_an_error_after_streamed_text_starts_its_own_line(tiny_run, tmp_path):
    """--novelty reads the training tokens after the sample has streamed: with them gone, the Error: line
    must not be glued to the sample when stdout and stderr share a log."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "tokens" / "train.npy").unlink()
    out = subprocess.run([sys.executable, "-m", "lstm_textgen", "generate", "--run", str(run), "--seed", "the cat",
                          "-n", "5", "--random-seed", "1", "--novelty"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert lines[0].startswith("the cat") and not lines[0].endswith("Error:")
    errors = [line for line in lines if "Error:" in line]
    assert len(errors) == 1 and errors[0].startswith("Error: ") and "train.npy" in errors[0]
