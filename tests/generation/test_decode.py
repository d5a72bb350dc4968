"""Decoding: one Row per text (its history, detokenizer, draws and stop rule), a Batch that steps rows together,
takes rows in between steps and lets finished ones go, and the draw that picks each row's token as if alone."""
import dataclasses

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.generation.decode import Batch, Row
from lstm_textgen.generation.sample import encode_seed
from lstm_textgen.model.stepper import Stepper


def test_batched_draw_agrees_with_the_row_draw():
    from lstm_textgen.generation.decode import _draw, _draw_rows

    rng = np.random.default_rng(0)
    weights = rng.random((8, 5000)).astype(np.float32) ** 8
    weights[:, ::7] = 0.0  # tokens that cannot be drawn
    weights[3, 128:] = 0.0  # all the mass in the first blocks
    for u in (np.zeros(8), rng.random(8), np.full(8, 1 - 1e-16)):
        picks = _draw_rows(weights, u)
        assert picks.tolist() == [_draw(row, x) for row, x in zip(weights, u)]
        assert (weights[np.arange(8), picks] > 0).all()




def decode(run, rows, joins=()):
    """Decode rows in one batch; joins: (step, rows) admitted after that many steps."""
    batch, joins = Batch(Stepper(run.weights)), dict(joins)
    batch.admit(rows)
    step = 0
    while batch.rows or any(s >= step for s in joins):
        if step in joins:
            batch.admit(joins.pop(step))
        if batch.rows:
            batch.advance()
        step += 1
    return [row.text for row in rows]


def test_a_row_writes_the_same_text_alone_and_in_a_batch_it_joins_late(run):
    ids = [encode_seed(run.tokenizer, seed)[0] for seed in ("the cat", "a dog sat", "the")]
    settings = [GenerateConfig(length=12, top_k=5), GenerateConfig(length=7, temperature=1.3, top_p=0.9),
                GenerateConfig(length=15, repetition_penalty=1.5, no_repeat_ngram_size=2)]

    def rows():
        return [Row(run.tokenizer, i, s, random_seed=n, group=n) for n, (i, s) in enumerate(zip(ids, settings))]

    alone = [decode(run, [row])[0] for row in rows()]
    together = rows()
    assert decode(run, together[:1], joins=[(3, together[1:2]), (5, together[2:])]) == alone[:1]
    assert [row.text for row in together] == alone
    assert [len(row.ids) - row.seed_length for row in together] == [12, 7, 15]


def test_a_row_finishes_at_a_stop_string_or_its_length_and_says_which(run):
    ids = encode_seed(run.tokenizer, "the cat")[0]
    greedy = GenerateConfig(length=30, greedy=True)
    free = decode(run, [Row(run.tokenizer, ids, greedy)])[0]
    stop = free.split()[3]
    stopped = Row(run.tokenizer, ids, dataclasses.replace(greedy, stop=[stop]))
    decode(run, [stopped])
    assert stopped.finish == "stop" and free.startswith(stopped.text) and stopped.text.endswith(stop)
    capped = Row(run.tokenizer, ids, dataclasses.replace(greedy, length=4))
    decode(run, [capped])
    assert capped.finish == "length" and len(capped.ids) - capped.seed_length == 4
    nothing = Row(run.tokenizer, ids, dataclasses.replace(greedy, length=0))
    assert nothing.finish == "length" and decode(run, [nothing]) == [""]


def test_a_batch_lets_rows_go_and_feeds_given_tokens(run):
    ids = encode_seed(run.tokenizer, "the cat")[0]
    rows = [Row(run.tokenizer, ids, GenerateConfig(length=5), random_seed=i, group=i) for i in range(3)]
    batch = Batch(Stepper(run.weights))
    batch.admit(rows)
    batch.drop(lambda row: row.group == 1)
    assert batch.rows == [rows[0], rows[2]] and batch.logits.shape[0] == 2
    token = run.tokenizer.index["sat"]
    events = batch.feed([token, token])
    assert [(row, piece) for row, piece in events] == [(rows[0], " sat"), (rows[2], " sat")]
    expected = Stepper(run.weights).prefill([ids + [token]])[1][0]
    np.testing.assert_allclose(batch.logits[0], expected, rtol=1e-5, atol=1e-5)


def test_rows_under_different_logit_biases_are_never_drawn_as_one_group(run):
    from lstm_textgen.generation.decode import draw

    ids, vocab = encode_seed(run.tokenizer, "the cat")[0], run.tokenizer.vocab_size
    favoured = [5, 9, 5]
    rows = [Row(run.tokenizer, ids, GenerateConfig(temperature=1.0, logit_bias={token: 100.0}), random_seed=i,
                group="one request") for i, token in enumerate(favoured)]
    logits = np.zeros((3, vocab), np.float32)
    assert draw(rows, logits).tolist() == favoured
    banned = Row(run.tokenizer, ids, GenerateConfig(temperature=0, logit_bias={7: -100.0}))
    plain = Row(run.tokenizer, ids, GenerateConfig(temperature=0))
    logits = np.zeros((2, vocab), np.float32)
    logits[:, 7] = 50.0
    assert draw([banned, plain], logits).tolist()[1] == 7 and draw([banned, plain], logits)[0] != 7
