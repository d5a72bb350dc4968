"""Writing with the model a word at a time: suggest() and the Continuation under --interactive and `suggest`."""
import json

import numpy as np

from lstm_textgen.model.stepper import softmax
from lstm_textgen.generation.interactive import Continuation, suggest
from lstm_textgen.generation.rules import BANNED

from helpers import assert_one_line_error, invoke



def test_suggest_gives_the_model_probabilities(run):
    from lstm_textgen.model.stepper import Stepper

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
    assert text.row.ids[-2:] == [run.tokenizer.index["sat"], 1] and text.text == "the cat sat zebra"


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


def test_suggest_user_errors(tiny_run):
    assert_one_line_error(invoke("suggest", "--run", tiny_run, "the", "-k", "0"), "-k/--top must be >= 1")
    assert_one_line_error(invoke("suggest", "--run", tiny_run, "zebra"), "no word of TEXT 'zebra' is in the model's")


def test_bpe_suggestions_are_greedy_completions_with_the_models_probability(bpe_run):
    from lstm_textgen.run.rundir import load_run

    run = load_run(bpe_run)
    text = "the cat sat on the"
    seed_ids = run.tokenizer.encode(text)
    choices = Continuation(run, text).choices(5)
    assert len(choices) == 5 and len({c.text for c in choices}) == 5
    probabilities = [c.probability for c in choices]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-6
    for choice in choices:
        assert run.tokenizer.decode(choice.ids) == choice.text and 1 <= len(choice.ids) <= 8
        keras = [np.asarray(run.model(np.array([seed_ids + choice.ids[:t]])))[0, -1]
                 for t in range(len(choice.ids) + 1)]
        for t, token in enumerate(choice.ids[1:], 1):  # after the first token, each is the likeliest one
            assert token == max(range(2, run.tokenizer.vocab_size), key=lambda i: keras[t][i])
        product = np.prod([keras[t][token] for t, token in enumerate(choice.ids)])
        assert choice.probability >= product - 1e-5  # equal, or more when two paths spell the same text
    assert suggest(run, text, 5) == [(c.text, c.probability) for c in choices]


def test_interactive_on_a_bpe_run_takes_whole_words_and_a_new_word(bpe_run):
    from lstm_textgen.run.rundir import load_run

    run = load_run(bpe_run)
    first = Continuation(run, "the dog").choices(10)
    result = invoke("generate", "--run", bpe_run, "--seed", "the dog", "-i", input="1\nzyzzyva\nq\n")
    assert result.exit_code == 0, result.output
    assert "not in the vocabulary" not in result.stderr
    assert result.stdout.splitlines()[-1] == "the dog" + first[0].text + " zyzzyva"
    listed = invoke("suggest", "--run", bpe_run, "the dog", "-k", "3", "--json")
    assert [n["token"] for n in json.loads(listed.stdout)["next"]] == [c.text for c in first[:3]]
