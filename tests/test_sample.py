"""The sampler on fake logits (no Keras), then every generate/suggest option through the CLI on a real run."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_textgen.errors import TextgenError
from lstm_textgen.interactive import Continuation, suggest
from lstm_textgen.config import GenerateConfig
from lstm_textgen.fast.stepper import softmax
from lstm_textgen.rules import BANNED, History, apply_rules, weights
from lstm_textgen.sample import Generator, draw_rows


def Settings(**values) -> GenerateConfig:
    """Generation settings with the plain softmax (temperature 1) unless told otherwise."""
    return GenerateConfig(**{"temperature": 1.0, **values})


def sample_next(logits, settings, rng, history=()) -> int:
    """One token drawn from a row of logits, as the generator draws each row."""
    row = np.array(logits, dtype=np.float32)[None]
    return int(draw_rows(row, settings, [rng], [History(history, settings.no_repeat_ngram_size)])[0])


def distribution(logits, settings, history=()) -> np.ndarray:
    """The probabilities a row is drawn from under settings (0 = cannot be drawn)."""
    row = apply_rules(np.array(logits, dtype=np.float32)[None], settings,
                      [History(history, settings.no_repeat_ngram_size)])
    if settings.greedy:
        return np.eye(row.shape[1])[row.argmax()]
    probs = weights(row)[0].astype(np.float64)
    return probs / probs.sum()


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")

VOCAB = 12


def fake_logits(seed=0, size=VOCAB) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, size).astype(np.float32)


def draws(logits, settings, n=4000, history=(), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample_next(logits, settings, rng, history) for _ in range(n)])


# --- the sampler on a fake row of logits -------------------------------------------------------------

def test_plain_distribution_is_the_softmax_without_pad_and_unk():
    logits = fake_logits()
    expected = softmax(logits[None].astype(np.float64))[0]
    expected[list(BANNED)] = 0.0
    np.testing.assert_allclose(distribution(logits, Settings()), expected / expected.sum(), atol=1e-7)


def test_pad_and_unk_are_never_drawn_even_when_likeliest():
    logits = fake_logits()
    logits[list(BANNED)] = 50.0
    for settings in (Settings(), Settings(greedy=True), Settings(top_k=1), Settings(top_p=0.01),
                     Settings(temperature=0.05)):
        assert not np.isin(draws(logits, settings, n=300), BANNED).any(), settings
        assert distribution(logits, settings)[list(BANNED)].sum() == 0.0


def test_top_k_keeps_exactly_k_even_with_ties():
    logits = fake_logits()
    for k in (1, 3, 7):
        probs = distribution(logits, Settings(top_k=k))
        assert (probs > 0).sum() == k
        allowed = logits.copy()
        allowed[list(BANNED)] = -np.inf
        assert set(np.flatnonzero(probs)) == set(np.argsort(-allowed)[:k])
    tied = np.ones(VOCAB, np.float32)
    assert (distribution(tied, Settings(top_k=4)) > 0).sum() == 4


def test_top_p_keeps_the_smallest_nucleus():
    probs = np.array([0, 0, 0.05, 0.4, 0.05, 0.3, 0.1, 0.1])
    logits = np.log(np.where(probs > 0, probs, 1e-30)).astype(np.float32)
    for top_p, kept in ((0.35, {3}), (0.6, {3, 5}), (0.85, {3, 5, 6, 7}), (0.99, {2, 3, 4, 5, 6, 7})):
        p = distribution(logits, Settings(top_p=top_p))
        assert set(np.flatnonzero(p)) == kept, top_p
        np.testing.assert_allclose(p[sorted(kept)], probs[sorted(kept)] / probs[sorted(kept)].sum(), rtol=1e-5)


@pytest.mark.parametrize("size", [300, 10_000])  # a peaked head, and a flat tail wider than the sorted head
def test_top_p_on_long_rows_matches_a_full_sort(size):
    for logits in (fake_logits(1, size) * 3, fake_logits(2, size) * 0.01):
        probs = softmax(logits[None].astype(np.float64))[0]
        probs[list(BANNED)] = 0.0
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        need = int(np.searchsorted(np.cumsum(probs[order]), 0.9)) + 1
        assert (distribution(logits, Settings(top_p=0.9)) > 0).sum() == need


def test_greedy_is_the_argmax():
    logits = fake_logits(3)
    assert set(draws(logits, Settings(greedy=True, temperature=5.0), n=50)) == {int(np.argmax(logits))}


def test_temperature_sharpens_and_flattens():
    logits = fake_logits(4)
    cold, plain, hot = (distribution(logits, Settings(temperature=t)) for t in (0.5, 1.0, 2.0))
    assert cold.max() > plain.max() > hot.max()
    expected = softmax((logits / 0.5)[None].astype(np.float64))[0]
    expected[list(BANNED)] = 0.0
    np.testing.assert_allclose(cold, expected / expected.sum(), atol=1e-7)


def test_draws_follow_the_distribution_on_a_long_row():
    logits = np.full(5000, -10.0, np.float32)  # long enough for the blockwise draw
    logits[[2, 127, 128, 4999]] = [1.0, 0.0, 2.0, 0.5]
    expected = distribution(logits, Settings())
    counts = np.bincount(draws(logits, Settings(), n=20_000), minlength=5000) / 20_000
    np.testing.assert_allclose(counts[[2, 127, 128, 4999]], expected[[2, 127, 128, 4999]], atol=0.015)


def test_batched_draw_agrees_with_the_row_draw():
    from lstm_textgen.sample import _draw, _draw_rows

    rng = np.random.default_rng(0)
    weights = rng.random((8, 5000)).astype(np.float32) ** 8
    weights[:, ::7] = 0.0  # tokens that cannot be drawn
    weights[3, 128:] = 0.0  # all the mass in the first blocks
    for u in (np.zeros(8), rng.random(8), np.full(8, 1 - 1e-16)):
        picks = _draw_rows(weights, u)
        assert picks.tolist() == [_draw(row, x) for row, x in zip(weights, u)]
        assert (weights[np.arange(8), picks] > 0).all()


def test_the_same_rng_seed_draws_the_same_tokens():
    logits = fake_logits(5)
    assert (draws(logits, Settings(), n=50, seed=7) == draws(logits, Settings(), n=50, seed=7)).all()
    assert (draws(logits, Settings(), n=50, seed=7) != draws(logits, Settings(), n=50, seed=8)).any()


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = np.array([0, 0, 2.0, -1.0, 2.0, -1.0], np.float32)
    probs = distribution(logits, Settings(repetition_penalty=2.0), history=[2, 3])
    expected = softmax(np.array([[1.0, -2.0, 2.0, -1.0]]))[0]
    np.testing.assert_allclose(probs[2:], expected, rtol=1e-6)


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_ngram():
    history = [5, 6, 7, 5, 6]
    assert History(history, 3).ngram_bans() == [7]
    assert sorted(History(history, 1).ngram_bans()) == [5, 6, 7]
    assert History(history, 4).ngram_bans() == []  # (7, 5, 6) never came before
    logits = np.zeros(VOCAB, np.float32)
    logits[7] = 10.0
    assert 7 not in draws(logits, Settings(no_repeat_ngram_size=3), n=200, history=history)
    assert sample_next(logits, Settings(no_repeat_ngram_size=3, greedy=True), np.random.default_rng(), history) != 7


def test_history_keeps_the_ngram_table_current():
    history = History([1, 2, 3], ngram_size=2)
    for token in (1, 2):
        history.append(token)
    assert sorted(history.ngram_bans()) == [3]  # after ..., 2 the bigram (2, 3) exists
    assert sorted(history.seen.tolist()) == [1, 2, 3]


def test_a_vocabulary_exhausted_by_no_repeat_still_draws_a_real_token():
    logits = np.zeros(4, np.float32)
    token = sample_next(logits, Settings(no_repeat_ngram_size=1), np.random.default_rng(0), history=[2, 3])
    assert token in (2, 3)


@pytest.mark.parametrize("changes, fragment", [
    ({"temperature": 0.0}, "--temperature must be > 0"),
    ({"top_p": 0.0}, "--top-p must be in (0, 1]"),
    ({"top_p": 1.01}, "--top-p must be in (0, 1]"),
    ({"top_k": -1}, "--top-k must be >= 0"),
    ({"length": -1}, "--length must be >= 0"),
    ({"repetition_penalty": 0.0}, "--repetition-penalty must be > 0"),
    ({"no_repeat_ngram_size": -1}, "--no-repeat-ngram-size must be >= 0"),
    ({"min_length": 9, "length": 5}, "--min-length 9 is more than --length 5"),
    ({"stop_newlines": -1}, "--stop-newlines must be >= 0"),
])
def test_settings_refuse_bad_values(changes, fragment):
    with pytest.raises(TextgenError, match=None) as caught:
        Settings(**changes).check(flag)
    assert fragment in str(caught.value)


# --- the library on a real trained run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tiny_run):
    from lstm_textgen.rundir import load_run

    return load_run(tiny_run)


def test_min_length_defers_the_stop_conditions(run):
    stop = Settings(length=30, temperature=1.5, stop_newlines=1, stop=["."], min_length=12)
    for sample in Generator(run.tokenizer, run.weights).sample(["the cat"] * 4, stop, [1, 2, 3, 4]):
        assert len(sample.tokens) >= 12  # a newline or '.' before then stops it at 12 exactly
        assert len(sample.tokens) in (12, 30) or sample.text.endswith((".", "\n")), sample.text


def test_batched_rows_stream_their_own_pieces_and_never_produce_pad_or_unk(run):
    pieces: dict[int, list[str]] = {}
    samples = Generator(run.tokenizer, run.weights).sample(["the cat", "a dog sat", "the"], Settings(length=25, temperature=2.0),
                                    [1, 2, 3], on_piece=lambda row, piece: pieces.setdefault(row, []).append(piece))
    for row, sample in enumerate(samples):
        assert "".join(pieces[row]) == sample.text and len(sample.tokens) == 25
        assert not set(sample.tokens) & set(BANNED)


def test_suggest_gives_the_model_probabilities(run):
    from lstm_textgen.fast.stepper import Stepper

    top = suggest(run, "the cat sat on", 5)
    ids = run.tokenizer.encode("the cat sat on")
    stepper = Stepper(run.weights)
    probs = softmax(stepper.prefill([ids])[1])[0]
    assert [w for w, _ in top] == [run.tokenizer.vocab[i] for i in np.argsort(-probs) if i not in BANNED][:5]
    keras_probs = np.asarray(run.model(np.array([ids])))[0, -1]
    np.testing.assert_allclose([p for _, p in top], [keras_probs[run.tokenizer.index[w]] for w, _ in top],
                               atol=1e-5)


def test_continuation_takes_a_persons_words(run):
    text = Continuation(run, "the cat")
    assert text.append_text("sat zebra") == ["zebra"]
    assert text.ids[-2:] == [run.tokenizer.index["sat"], 1] and text.text == "the cat sat zebra"


# --- the command line on a real trained run ----------------------------------------------------------

def invoke(*args, **kwargs):
    from lstm_textgen.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def gen(tiny_run, *args, **kwargs):
    result = invoke("generate", "--run", tiny_run, *args, **kwargs)
    assert result.exit_code == 0, result.output
    return result


def jsonl(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_random_seed_repeats_exactly_and_another_seed_differs(tiny_run):
    args = ("--seed", "the cat", "-n", "30", "--temperature", "1.5")
    first, again = (gen(tiny_run, *args, "--random-seed", "11").stdout for _ in range(2))
    other = gen(tiny_run, *args, "--random-seed", "12").stdout
    assert first == again and first != other


def test_without_random_seed_the_seed_used_is_printed_and_repeats(tiny_run):
    result = gen(tiny_run, "--seed", "the cat", "-n", "20", "--temperature", "1.5")
    line = next(line for line in result.stderr.splitlines() if line.startswith("random seed: "))
    seed = line.split()[2]
    assert result.stdout == gen(tiny_run, "--seed", "the cat", "-n", "20", "--temperature", "1.5",
                                "--random-seed", seed).stdout
    assert "random seed" not in gen(tiny_run, "--seed", "the", "-n", "2", "--random-seed", "1").stderr


def test_samples_and_seeds_file_run_as_one_batch_with_jsonl(tiny_run, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("the cat\n\na dog\n", encoding="utf-8")
    rows = jsonl(gen(tiny_run, "--seeds-file", seeds, "--samples", "2", "-n", "8", "--jsonl",
                     "--random-seed", "40", "--top-k", "5", "--top-p", "0.9"))
    assert [r["seed"] for r in rows] == ["the cat", "the cat", "a dog", "a dog"]
    assert [r["random_seed"] for r in rows] == [40, 41, 42, 43]
    assert set(rows[0]) == {"seed", "text", "random_seed", "settings", "unknown_seed_words"}
    assert rows[0]["settings"]["top_k"] == 5 and rows[0]["settings"]["top_p"] == 0.9
    assert rows[0]["settings"]["length"] == 8
    plain = gen(tiny_run, "--seed", "the cat", "--samples", "3", "-n", "5", "--random-seed", "1").stdout
    assert plain.count("--- sample ") == 3 and "(random seed 3)" in plain


def test_stop_string_ends_the_text_once_it_appears(tiny_run):
    rows = jsonl(gen(tiny_run, "--seed", "the cat", "--samples", "4", "-n", "200", "--stop", ".",
                     "--random-seed", "3", "--jsonl"))
    for row in rows:
        assert row["text"].endswith(".") and row["text"].count(".") == 1, row["text"]


def test_stop_newlines_ends_after_that_many_lines(tiny_run):
    rows = jsonl(gen(tiny_run, "--seed", "the cat", "--samples", "3", "-n", "300", "--stop-newlines", "2",
                     "--random-seed", "3", "--jsonl"))
    for row in rows:
        assert row["text"].count("\n") == 2 and row["text"].endswith("\n"), row["text"]


def test_min_length_and_length_through_the_cli(tiny_run):
    args = ("--seed", "the cat", "-n", "10", "--stop", "a", "--random-seed", "3", "--jsonl")  # cat, sat, a...
    early = jsonl(gen(tiny_run, *args))[0]
    late = jsonl(gen(tiny_run, *args, "--min-length", "10"))[0]
    assert late["settings"]["min_length"] == 10
    assert late["text"].startswith(early["text"]) and len(late["text"]) > len(early["text"])  # same draws
    assert gen(tiny_run, "--seed", "The cat", "-n", "0").stdout == "The cat\n"


def test_greedy_ignores_the_random_seed(tiny_run):
    greedy = gen(tiny_run, "--seed", "the cat", "-n", "20", "--greedy").stdout
    assert greedy == gen(tiny_run, "--seed", "the cat", "-n", "20", "--greedy", "--random-seed", "9").stdout


def test_no_repeat_ngram_and_repetition_penalty_on_the_real_model(run, tiny_run):
    settings = Settings(length=40, temperature=0.3, no_repeat_ngram_size=2, repetition_penalty=1.3)
    for sample in Generator(run.tokenizer, run.weights).sample(["the cat", "a dog"], settings, [2, 3]):
        ids = run.tokenizer.encode(sample.seed) + sample.tokens
        bigrams = list(zip(ids, ids[1:]))
        assert len(bigrams) == len(set(bigrams)), sample.text
    row = jsonl(gen(tiny_run, "--seed", "the cat", "-n", "5", "--no-repeat-ngram-size", "2",
                    "--repetition-penalty", "1.3", "--random-seed", "2", "--jsonl"))[0]
    assert row["settings"]["no_repeat_ngram_size"] == 2 and row["settings"]["repetition_penalty"] == 1.3


def test_unknown_seed_words_are_named_and_fed_as_unk(tiny_run):
    result = gen(tiny_run, "--seed", "the zebra cat", "-n", "5", "--random-seed", "1", "--jsonl")
    assert "not in the vocabulary, fed as <unk>: zebra" in result.stderr
    assert jsonl(result)[0]["unknown_seed_words"] == ["zebra"]
    assert "<unk>" not in result.stdout and "<pad>" not in result.stdout


def test_suggest_lists_the_top_words(tiny_run):
    result = invoke("suggest", "--run", tiny_run, "the cat sat on")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 10 and lines[0].lstrip().startswith("1. ")
    probs = [float(line.split()[-1]) for line in lines]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    data = json.loads(invoke("suggest", "--run", tiny_run, "the zebra", "-k", "3", "--json").stdout)
    assert len(data["next"]) == 3 and data["unknown_seed_words"] == ["zebra"]
    assert data["next"][0]["probability"] >= data["next"][1]["probability"]


def test_interactive_picks_numbers_enter_and_own_words(tiny_run, run):
    first = suggest(run, "the cat", 10)
    result = invoke("generate", "--run", tiny_run, "--seed", "the cat", "--interactive",
                    input="2\n\ndog\nzebra\nq\n")
    assert result.exit_code == 0, result.output
    assert f"1. {first[0][0]} (" in result.stdout and f"2. {first[1][0]} (" in result.stdout
    assert "not in the vocabulary, fed as <unk>: zebra" in result.stderr
    expected = Continuation(run, "the cat")
    expected.append(run.tokenizer.index[first[1][0]])
    expected.append(run.tokenizer.index[expected.top(1)[0][0]])
    expected.append_text("dog")
    expected.append_text("zebra")
    assert result.stdout.splitlines()[-1] == expected.text and expected.text.endswith(" dog zebra")


def test_interactive_refuses_a_number_out_of_range(tiny_run):
    result = invoke("generate", "--run", tiny_run, "--seed", "the", "-i", input="99\nq\n")
    assert result.exit_code == 0 and "'99': type a number from 1 to 10" in result.stderr
    assert result.stdout.splitlines()[-1] == "the"


def test_interactive_ends_when_input_ends_or_length_is_reached(tiny_run):
    ended = invoke("generate", "--run", tiny_run, "--seed", "the", "-i", input="1\n")
    assert ended.exit_code == 0, ended.output
    capped = invoke("generate", "--run", tiny_run, "--seed", "the", "-i", "-n", "2", input="\n" * 5)
    assert capped.exit_code == 0 and capped.stdout.count("1. ") == 2


# --- user errors: one `Error:` line, exit code 1 -----------------------------------------------------

def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, fragment", [
    (["--seed", "the", "--temperature", "0"], "--temperature must be > 0"),
    (["--seed", "the", "--temperature", "-0.5"], "--temperature must be > 0"),
    (["--seed", "the", "--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--seed", "the", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["--seed", "the", "--top-k", "-1"], "--top-k must be >= 0"),
    (["--seed", "the", "-n", "-1"], "-n/--length must be >= 0"),
    (["--seed", ""], "the seed phrase is empty"),
    (["--seed", "   "], "the seed phrase is empty"),
    (["--seed", "zebra giraffe"], "no word of the seed 'zebra giraffe' is in the model's vocabulary"),
    ([], "give a seed phrase with --seed"),
    (["--seed", "the", "--samples", "0"], "--samples must be >= 1"),
    (["--seed", "the", "--samples", "2", "--interactive"], "--interactive takes one --seed"),
])
def test_generate_user_errors(tiny_run, args, fragment):
    assert_one_line_error(invoke("generate", "--run", tiny_run, *args), fragment)


def test_empty_seeds_file_is_refused(tiny_run, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n  \n", encoding="utf-8")
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seeds-file", seeds), "has no seed phrases")
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seeds-file", tmp_path / "none.txt"),
                          "cannot read --seeds-file")


def test_suggest_user_errors(tiny_run):
    assert_one_line_error(invoke("suggest", "--run", tiny_run, "the", "-k", "0"), "-k/--top must be >= 1")
    assert_one_line_error(invoke("suggest", "--run", tiny_run, "zebra"), "no word of the seed")
