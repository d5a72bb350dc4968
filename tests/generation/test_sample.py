"""The draw (on fake weights, no Keras), the sampling loop on a real run, generate_many, and every generate
option through the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lstm_textgen.generation.rules import BANNED
from lstm_textgen.config import load_config
from lstm_textgen.generation.sample import Generator, generate

from helpers import Settings, assert_one_line_error, distribution, draws, fake_logits, invoke


# --- the sampler on a fake row of logits -------------------------------------------------------------


def test_draws_follow_the_distribution_on_a_long_row():
    logits = np.full(5000, -10.0, np.float32)  # long enough for the blockwise draw
    logits[[2, 127, 128, 4999]] = [1.0, 0.0, 2.0, 0.5]
    expected = distribution(logits, Settings())
    counts = np.bincount(draws(logits, Settings(), n=20_000), minlength=5000) / 20_000
    np.testing.assert_allclose(counts[[2, 127, 128, 4999]], expected[[2, 127, 128, 4999]], atol=0.015)


def test_the_same_rng_seed_draws_the_same_tokens():
    logits = fake_logits(5)
    assert (draws(logits, Settings(), n=50, seed=7) == draws(logits, Settings(), n=50, seed=7)).all()
    assert (draws(logits, Settings(), n=50, seed=7) != draws(logits, Settings(), n=50, seed=8)).any()


# --- the library on a real trained run ---------------------------------------------------------------


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


# --- the command line on a real trained run ----------------------------------------------------------

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


def test_a_logit_bias_outside_the_vocabulary_is_refused_before_anything_is_drawn(run):
    from lstm_textgen.errors import ConfigError

    with pytest.raises(ConfigError, match=f"generate.logit_bias names token id {run.tokenizer.vocab_size}, outside"):
        generate(run, "the cat", logit_bias={run.tokenizer.vocab_size: 1.0})
    the = run.tokenizer.encode("the")[0]
    assert "the" not in generate(run, "the cat", length=30, temperature=0, logit_bias={the: -100.0}).split()


def test_greedy_ignores_the_random_seed(tiny_run):
    greedy = gen(tiny_run, "--seed", "the cat", "-n", "20", "--greedy").stdout
    assert greedy == gen(tiny_run, "--seed", "the cat", "-n", "20", "--greedy", "--random-seed", "9").stdout


def test_temperature_zero_is_greedy_on_the_command_line_in_a_config_and_in_the_library(run, tiny_run):
    greedy = gen(tiny_run, "--seed", "the cat", "-n", "20", "--greedy").stdout
    assert gen(tiny_run, "--seed", "the cat", "-n", "20", "-t", "0", "--random-seed", "9").stdout == greedy
    assert gen(tiny_run, "--seed", "the cat", "-n", "20", "-t", "0", "--greedy").stdout == greedy  # the same thing
    assert "the cat" + generate(run, "the cat", length=20, temperature=0, top_k=3, random_seed=1) + "\n" == greedy
    assert load_config(None, ["generate.temperature=0"]).generate.temperature == 0


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


# --- user errors: one `Error:` line, exit code 1 -----------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--seed", "the", "--temperature", "-0.5"], "--temperature must be >= 0"),
    (["--seed", "the", "--top-p", "0"], "--top-p must be in (0, 1]"),
    (["--seed", "the", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
    (["--seed", "the", "--top-k", "-1"], "--top-k must be >= 0"),
    (["--seed", "the", "-n", "-1"], "-n/--length must be >= 0"),
    (["--seed", ""], "the seed phrase is empty"),
    (["--seed", "   "], "the seed phrase is empty"),
    (["--seed", "zebra giraffe"], "no word of the seed phrase 'zebra giraffe' is in the model's vocabulary"),
    ([], "give a seed phrase with --seed"),
    (["--seed", "the", "--samples", "0"], "--samples must be >= 1"),
])
def test_generate_user_errors(tiny_run, args, fragment):
    assert_one_line_error(invoke("generate", "--run", tiny_run, *args), fragment)


@pytest.mark.parametrize("args, fragment", [
    (["--samples", "2", "--interactive"], "--interactive and --samples cannot be used together"),
    (["--interactive", "--seeds-file", "s.txt"], "--interactive and --seeds-file cannot be used together"),
    (["--interactive", "--jsonl"], "--interactive and --jsonl cannot be used together"),
    (["-i", "--top-k", "3"], "--interactive and --top-k cannot be used together: you pick each word"),
    (["-i", "--random-seed", "3"], "--interactive and --random-seed cannot be used together"),
    (["-i", "--stop", "x"], "--interactive and --stop cannot be used together"),
    (["--greedy", "-t", "0.5"], "--greedy and -t/--temperature cannot be used together"),
    (["--greedy", "--top-p", "0.5"], "--greedy and --top-p cannot be used together"),
    (["-t", "0", "--top-k", "5"], "-t/--temperature 0 and --top-k cannot be used together: -t/--temperature 0 "
                                  "always takes the likeliest token"),
])
def test_contradictory_flags_are_a_usage_error_before_the_run_is_read(tmp_path, args, fragment):
    result = invoke("generate", "--run", tmp_path / "no_such_run", "--seed", "the", *args)  # the run is never read
    assert result.exit_code == 2, result.output  # Click's usage errors
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output


def test_empty_seeds_file_is_refused(tiny_run, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("\n  \n", encoding="utf-8")
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seeds-file", seeds), "has no seed phrases")
    assert_one_line_error(invoke("generate", "--run", tiny_run, "--seeds-file", tmp_path / "none.txt"),
                          "cannot read --seeds-file")


def test_bpe_generation_streams_whole_characters_and_counts_tokens(bpe_run):
    from lstm_textgen.run.rundir import load_run
    from lstm_textgen.generation.sample import generate_many

    run = load_run(bpe_run)
    pieces, unknown = [], []
    seed = "the zyzzyva café 🐕"  # a word the corpus never had: no <unk>, nothing to report
    sample = generate_many(run, [seed], 1, 3, lambda row, piece: pieces.append(piece),
                           lambda s, words: unknown.append(words), length=40, temperature=1.5)[0]
    assert unknown == [] and sample.unknown == [] and len(sample.tokens) == 40
    assert "".join(pieces) == sample.text
    assert seed + sample.text == run.tokenizer.decode(run.tokenizer.encode(seed) + sample.tokens)
    assert 1 not in sample.tokens and 0 not in sample.tokens


def test_bpe_pieces_wait_for_a_character_split_over_tokens(bpe_run, monkeypatch):
    from lstm_textgen.run.rundir import load_run

    run = load_run(bpe_run)
    byte_id = {piece: i for i, piece in enumerate(run.tokenizer.bytes) if len(piece) == 1}
    forced = iter([byte_id[bytes([b])] for b in "世".encode()] * 2)  # three one-byte tokens, twice
    monkeypatch.setattr("lstm_textgen.generation.decode.draw_rows", lambda logits, *args: np.array([next(forced)]))
    pieces = []
    generator = Generator(run.tokenizer, run.weights)
    result = generator.sample(["the"], Settings(length=5), [0], lambda row, piece: pieces.append(piece))[0]
    assert pieces == ["", "", "世", "", "\ufffd"] and result.text == "世\ufffd"  # the unfinished one: U+FFFD


def test_generate_on_a_bpe_run_through_the_cli(bpe_run):
    result = invoke("generate", "--run", bpe_run, "--seed", "the naïve 🐕", "-n", "12", "--random-seed", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("the naïve 🐕") and "not in the vocabulary" not in result.stderr
    jsonl = invoke("generate", "--run", bpe_run, "--seed", "  ", "-n", "5", "--random-seed", "4", "--jsonl")
    assert jsonl.exit_code == 0 and json.loads(jsonl.stdout)["unknown_seed_words"] == []
