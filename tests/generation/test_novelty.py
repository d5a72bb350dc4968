"""Novelty: exact match lengths against the training tokens, copy rates, the longest copied span, --novelty."""
import json
import shutil

import numpy as np
import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.novelty import CorpusIndex, format_novelty, novelty, parse_ns

from conftest import train_tiny
from helpers import assert_one_line_error, invoke


def brute_match_lengths(corpus, text):
    corpus, text = list(corpus), list(text)
    out = []
    for i in range(len(text)):
        length = 0
        while i + length < len(text) and any(corpus[p:p + length + 1] == text[i:i + length + 1]
                                             for p in range(len(corpus))):
            length += 1
        out.append(length)
    return out


@pytest.mark.parametrize("vocab", [2, 3, 6])
def test_match_lengths_equal_brute_force(vocab):
    rng = np.random.default_rng(vocab)
    for _ in range(60):  # small vocabularies: many candidate positions, long matches
        corpus = rng.integers(2, 2 + vocab, rng.integers(1, 120))
        text = np.concatenate([rng.integers(2, 3 + vocab, rng.integers(0, 8)),  # 2 + vocab never occurs
                               corpus[3:3 + rng.integers(0, 40)], rng.integers(2, 3 + vocab, rng.integers(0, 8))])
        assert list(CorpusIndex(corpus).match_lengths(text)) == brute_match_lengths(corpus, text)


def test_copy_rate_and_longest_span_by_hand():
    corpus = CorpusIndex(np.arange(10, 30))  # 10 11 12 ... 29
    seed = [10, 11, 12]
    generated = [13, 14, 15, 16, 99, 20, 21, 22, 23, 24, 25, 99]
    report = novelty(generated, corpus, seed, ns=(4, 8))
    # 4-grams holding a generated token start at text positions 0..11 (8-grams: 0..7); copied: those inside
    # 10..16 (positions 0-3) and 20..25 (positions 8-10)
    assert report["ngrams"] == {4: 12, 8: 8}
    assert report["copy_rate"][4] == pytest.approx(7 / 12)
    assert report["copy_rate"][8] == 0.0  # 10..16 is 7 long, 20..25 is 6 long
    assert report["longest_copied_span"] == 6 and report["longest_copied_start"] == 5
    assert novelty([], corpus, seed)["copy_rate"] == {4: None, 8: None}
    assert novelty([13], corpus, [10, 11, 12], ns=(4,))["copy_rate"] == {4: 1.0}
    assert novelty([13], corpus, [], ns=(4,))["copy_rate"] == {4: None}


def test_parse_ns():
    assert parse_ns("8,4,4") == (4, 8)
    for bad in ("", "0", "a", "4,-1"):
        with pytest.raises(TextgenError, match="--novelty takes n-gram sizes"):
            parse_ns(bad)


def test_format_novelty():
    line = format_novelty({"copy_rate": {"4": 0.625, "8": None}, "longest_copied_span": 2,
                           "longest_copied_text": " the\ncat"})
    assert line == 'novelty: copy rate 4-grams 62.5%, 8-grams -; longest copied span 2 tokens: "the\\ncat"'


def test_a_verbatim_copy_is_found_in_a_corpus_the_size_of_tiny_shakespeare():
    """The slowest case on a realistic index; its time is a benchmark's business, not a test's."""
    rng = np.random.default_rng(0)
    ids = np.minimum(rng.zipf(1.3, 260_000), 9_999).astype(np.int32) + 1  # ~1 MB of text: 260k word tokens
    copied = list(ids[1000:1200])  # 200 tokens copied verbatim: the slowest case
    report = novelty(copied, CorpusIndex(ids), list(ids[990:1000]))
    assert report["copy_rate"] == {4: 1.0, 8: 1.0} and report["longest_copied_span"] == 200


def test_generate_novelty_on_a_run(tiny_run):
    jsonl = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "12", "--random-seed", "3",
                   "--samples", "2", "--jsonl", "--novelty", catch_exceptions=False)
    records = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(records) == 2
    for record in records:
        report = record["novelty"]
        assert set(report["copy_rate"]) == {"4", "8"} and report["ngrams"] == {"4": 11, "8": 7}
        assert all(0.0 <= rate <= 1.0 for rate in report["copy_rate"].values())
        assert 1 <= report["longest_copied_span"] <= 12 and report["longest_copied_text"].strip()
    plain = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "12", "--random-seed", "3",
                   "--novelty", "3,5", catch_exceptions=False)
    assert plain.exit_code == 0 and plain.stdout.startswith("the cat")
    assert "novelty: copy rate 3-grams" in plain.stderr and "5-grams" in plain.stderr
    without = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "5", "--jsonl", catch_exceptions=False)
    assert "novelty" not in json.loads(without.stdout)


def test_copy_rates_on_a_runs_own_corpus_are_exactly_the_brute_force_ones(tiny_run):
    """Random words around a span copied from the training tokens: the rates and the span are what a plain
    search of the corpus finds, neither 0 nor 1."""
    from lstm_textgen.generation.novelty import load_corpus_index
    from lstm_textgen.run.rundir import load_run
    run = load_run(tiny_run)
    corpus = load_corpus_index(run)
    rng = np.random.default_rng(1)
    copied = list(corpus.ids[100:112])
    text = list(rng.integers(2, run.tokenizer.vocab_size, 10)) + copied + list(rng.integers(2, run.tokenizer.vocab_size, 10))
    report = novelty(text, corpus, ns=(4, 8))
    matched = brute_match_lengths(corpus.ids, text)
    for n in (4, 8):
        starts = range(len(text) - n + 1)
        assert report["copy_rate"][n] == pytest.approx(np.mean([matched[i] >= n for i in starts]))
        assert 0.0 < report["copy_rate"][n] < 1.0
    assert report["longest_copied_span"] == max(matched) >= 12


def test_generate_novelty_errors(tiny_run, tmp_path):
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seed", "the", "--novelty", "x"),
                          "--novelty takes n-gram sizes")
    usage = invoke("generate", "--run", tiny_run, "--seed", "the", "-i", "--novelty")
    assert usage.exit_code == 2 and "Error: --interactive and --novelty cannot be used together" in usage.output
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    shutil.rmtree(run / "tokens")
    assert_one_line_error(invoke("generate", "--run", run, "--seed", "the", "-n", "3", "--jsonl", "--novelty"),
                          "tokens/train.npy is missing")


POEM = ("the owl and the pussy cat went to sea in a beautiful pea green boat .\n"
        "they took some honey and plenty of money wrapped up in a five pound note .\n")


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory):
    """A model trained until greedy decoding recites its small corpus."""
    folder = tmp_path_factory.mktemp("overfit")
    corpus = folder / "poem.txt"
    corpus.write_text(POEM * 40)
    return train_tiny(corpus, folder / "run", "train.steps_per_epoch=250", "train.batch_size=16", "model.units=32",
                      "model.dense_units=32", "embedding.dim=16", "data.window_size=8", "train.learning_rate=1.0e-2",
                      "model.dropout=0.0", "model.dense_dropout=0.0", "train.sample_every=null")


@pytest.mark.slow
def test_greedy_recital_of_an_overfit_model_is_all_copied(overfit_run):
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation.novelty import load_corpus_index
    from lstm_textgen.config import GenerateConfig as Settings
    from lstm_textgen.generation.sample import Generator
    run = load_run(overfit_run)
    seed = "the owl and the pussy cat"
    sample = Generator(run.tokenizer, run.weights).sample([seed], Settings(length=40, greedy=True), [0])[0]
    assert (seed + sample.text).startswith(POEM[:60].replace(" .", "."))  # it recites the poem
    corpus = load_corpus_index(run)
    report = novelty(sample.tokens, corpus, run.tokenizer.encode(seed))
    assert report["copy_rate"] == {4: 1.0, 8: 1.0}
    assert report["longest_copied_span"] == 40

    rng = np.random.default_rng(0)
    random_report = novelty(list(rng.integers(2, run.tokenizer.vocab_size, 40)), corpus, run.tokenizer.encode(seed))
    assert random_report["copy_rate"][4] < 1.0 and random_report["copy_rate"][8] < 1.0
    assert random_report["longest_copied_span"] < 40

    result = invoke("generate", "--run", overfit_run, "--seed", seed, "--greedy", "-n", "40", "--jsonl", "--novelty",
                    catch_exceptions=False)
    record = json.loads(result.stdout)
    assert record["novelty"]["copy_rate"] == {"4": 1.0, "8": 1.0}
    assert record["novelty"]["longest_copied_text"].strip() == record["text"].strip()
