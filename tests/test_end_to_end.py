"""Whole journeys through the command line: a bpe run with text the word level cannot spell, and real
Shakespeare trained, generated, evaluated and loaded back through the library."""
import json

import pytest

from lstm_textgen import TextgenError, generate, load_run

from conftest import REPO, SHARED_DATA
from helpers import invoke, tiny_train_args


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
    assert generate(loaded, "the people", length=10, temperature=0) == generate(loaded, "the people", length=10,
                                                                               greedy=True)
    with pytest.raises(TextgenError):
        generate(loaded, "the people", temperature=-1)
