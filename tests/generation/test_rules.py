"""Sampling rules on fake logits (no Keras): each rule alone, in the order of rules.RULES, as the generator
draws from them."""
import numpy as np
import pytest

from lstm_textgen.config import GenerateConfig
from lstm_textgen.model.stepper import softmax
from lstm_textgen.generation.decode import draw_rows
from lstm_textgen.generation.rules import BANNED, History, apply_rules

from helpers import VOCAB, Settings, distribution, draws, fake_logits, sample_next


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


@pytest.mark.parametrize("share", [0.05, 0.3, 0.9, 1.0])
def test_min_p_keeps_the_tokens_at_least_that_share_as_likely_as_the_likeliest(share):
    logits = fake_logits(3, size=400)
    plain = distribution(logits, Settings())
    kept = distribution(logits, Settings(min_p=share))
    expected = np.where(plain >= share * plain.max() * (1 - 1e-6), plain, 0.0)
    np.testing.assert_allclose(kept, expected / expected.sum(), atol=1e-7)
    hot = distribution(logits, Settings(min_p=share, temperature=3.0))  # the share is of the model's own distribution
    assert ((hot > 0) == (kept > 0)).all()
    drawn = draws(logits, Settings(min_p=share), n=300)
    assert (kept[drawn] > 0).all()
    assert sample_next(logits, Settings(min_p=share, greedy=True), np.random.default_rng(0)) == plain.argmax()


def test_min_p_is_a_generate_flag_an_http_field_and_a_config_key(tiny_run):
    from lstm_textgen.config import load_config
    from lstm_textgen.serve.protocol import SETTINGS, completion_settings, parse_completion

    from helpers import invoke

    result = invoke("generate", "--run", tiny_run, "--seed", "the cat", "-n", "5", "--min-p", "0.2", "--jsonl")
    assert result.exit_code == 0 and '"min_p": 0.2' in result.stdout
    refused = invoke("generate", "--run", tiny_run, "--seed", "the", "--min-p", "2")
    assert "Error: --min-p must be in [0, 1], got 2.0" in refused.output
    assert SETTINGS["min_p"] == "min_p"
    request = parse_completion({"model": "run", "prompt": "the", "min_p": 0.3}, 100)
    assert completion_settings(request, GenerateConfig(), 100, 50).min_p == 0.3
    assert load_config(None, ["generate.min_p=0.1"]).generate.min_p == 0.1


def test_greedy_is_the_argmax():
    logits = fake_logits(3)
    assert set(draws(logits, Settings(greedy=True, temperature=5.0), n=50)) == {int(np.argmax(logits))}


def test_temperature_zero_is_greedy_whatever_else_is_set():
    logits = fake_logits(3)
    for settings in (Settings(temperature=0), Settings(temperature=0, top_k=4, top_p=0.5, min_p=0.2)):
        assert set(draws(logits, settings, n=50)) == {int(np.argmax(logits))}
        np.testing.assert_array_equal(distribution(logits, settings), distribution(logits, Settings(greedy=True)))
    history = [int(np.argmax(logits))] * 3  # rules that change the likeliest token apply as under greedy
    assert (sample_next(logits, Settings(temperature=0, repetition_penalty=50.0), np.random.default_rng(), history)
            == sample_next(logits, Settings(greedy=True, repetition_penalty=50.0), np.random.default_rng(), history)
            != int(np.argmax(logits)))


def test_frequency_and_presence_penalties_lower_the_logits_of_drawn_tokens_as_openai_defines_them():
    logits = fake_logits(6)
    history = History([5, 7])  # the seed: in the text, but not drawn, so not counted
    for token in (5, 5, 6, 5):
        history.append(token)
    settings = Settings(frequency_penalty=0.5, presence_penalty=1.5)
    expected = logits.astype(np.float64)
    expected[list(BANNED)] = -np.inf
    expected[5] -= 0.5 * 3 + 1.5  # logit[j] -= frequency_penalty * count[j] + presence_penalty * (count[j] > 0)
    expected[6] -= 0.5 * 1 + 1.5
    np.testing.assert_allclose(apply_rules(logits[None].copy(), settings, [history])[0], expected, rtol=1e-6)
    for seed in range(200):  # the draw is the plain draw from those logits, token for token
        penalised = draw_rows(logits[None].copy(), settings, [np.random.default_rng(seed)], [history])
        plain = draw_rows(expected[None].astype(np.float32), Settings(), [np.random.default_rng(seed)], [History()])
        assert penalised[0] == plain[0]
    negative = apply_rules(logits[None].copy(), Settings(frequency_penalty=-2.0), [history])[0]
    assert negative[5] == pytest.approx(logits[5] + 6.0)  # below 0 they favour repeats
    untouched = apply_rules(logits[None].copy(), settings, [History([5, 6])])[0]  # nothing drawn yet
    np.testing.assert_array_equal(untouched[2:], logits[2:])


def test_logit_bias_adds_each_tokens_bias_to_its_logit_under_every_other_rule():
    logits = fake_logits(8)
    bias = {3: -100.0, 4: 2.5, 9: 100.0}
    expected = logits.astype(np.float64)
    expected[list(BANNED)] = -np.inf
    for token, value in bias.items():
        expected[token] += value
    np.testing.assert_allclose(apply_rules(logits[None].copy(), Settings(logit_bias=bias), [History()])[0], expected,
                               rtol=1e-6)
    assert set(draws(logits, Settings(logit_bias={3: 100.0}), n=200)) == {3}  # all but forced
    assert 3 not in draws(logits, Settings(logit_bias={3: -100.0}, temperature=2.0), n=2000)  # all but banned
    assert sample_next(logits, Settings(temperature=0, logit_bias={3: 100.0}), np.random.default_rng()) == 3
    padded = apply_rules(logits[None].copy(), Settings(logit_bias={0: 100.0, 1: 100.0}), [History()])[0]
    assert np.isneginf(padded[list(BANNED)]).all()  # <pad> and <unk> stay out


def test_temperature_sharpens_and_flattens():
    logits = fake_logits(4)
    cold, plain, hot = (distribution(logits, Settings(temperature=t)) for t in (0.5, 1.0, 2.0))
    assert cold.max() > plain.max() > hot.max()
    expected = softmax((logits / 0.5)[None].astype(np.float64))[0]
    expected[list(BANNED)] = 0.0
    np.testing.assert_allclose(cold, expected / expected.sum(), atol=1e-7)


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
