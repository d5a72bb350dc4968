"""The serving batch on a real tiny run: requests that arrive together step as one batch, each row draws what
Generator draws for it, finished and abandoned rows leave, probes answer suggest, and close() ends cleanly."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lstm_textgen.config import GenerateConfig as Settings
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.generation.sample import Generator, encode_seed
from lstm_textgen.serve.scheduler import STOPPING, Batcher, Job, Probe


class Collector:
    """publish() for one job: every event kept, and an Event set when the job is done."""

    def __init__(self):
        self.events, self.finished = [], threading.Event()

    def __call__(self, job, events):
        self.events += events
        if job.done:
            self.finished.set()

    def texts(self, rows: int) -> list[str]:
        return ["".join(piece for row, piece, _, _ in self.events if row == r) for r in range(rows)]

    def finishes(self, rows: int) -> list[str | None]:
        return [next((f for row, _, f, _ in self.events if row == r and f), None) for r in range(rows)]


def make_job(run, seeds: list[str], settings: Settings, random_seeds: list[int]) -> tuple[Job, Collector]:
    collector = Collector()
    ids = [encode_seed(run.tokenizer, seed)[0] for seed in seeds]
    return Job(ids, settings, random_seeds, collector), collector


@pytest.fixture
def batcher(run):
    batcher = Batcher(run.tokenizer, run.weights, max_rows=16, name="tiny").start()
    yield batcher
    batcher.close()


def test_a_job_draws_what_generate_draws(run, batcher):
    settings = Settings(length=40, temperature=1.3, top_k=8, repetition_penalty=1.2, stop=["log"])
    seeds, random_seeds = ["the cat", "a dog sat on", "the cat"], [5, 6, 7]
    job, collector = make_job(run, seeds, settings, random_seeds)
    batcher.submit(job)
    assert collector.finished.wait(10)
    expected = Generator(run.tokenizer, run.weights).sample(seeds, settings, random_seeds)
    assert collector.texts(3) == [sample.text for sample in expected]
    assert job.tokens == [len(sample.tokens) for sample in expected]
    assert collector.finishes(3) == ["stop" if s.text.endswith("log") else "length" for s in expected]


def test_jobs_that_arrive_together_step_as_one_batch_and_keep_their_own_text(run):
    batcher = Batcher(run.tokenizer, run.weights, max_rows=16)  # started after the jobs are queued: they arrive together
    made = [make_job(run, seeds, Settings(length=30, temperature=t, top_k=k), [s + i for i in range(len(seeds))])
            for seeds, t, k, s in [(["the cat"], 0.7, 0, 1), (["a dog"], 1.5, 0, 2), (["the"], 0.7, 0, 3),
                                   (["a cat"], 1.0, 4, 4), (["the dog"], 1.0, 4, 5), (["the", "a"], 1.0, 4, 6)]]
    # rows under the same rules are drawn in one call; a lone row under top-k is drawn alone, as generate draws it
    for job, _ in made:
        batcher.submit(job)
    batcher.start()
    try:
        for job, collector in made:
            assert collector.finished.wait(10)
        assert batcher.widest == 7  # seven rows, one batch
        assert batcher.steps <= 30
        for job, collector in made:
            alone = Generator(run.tokenizer, run.weights).sample(
                [run.tokenizer.decode(ids) for ids in job.rows_ids], job.settings, job.random_seeds)
            assert collector.texts(len(alone)) == [sample.text for sample in alone]
    finally:
        batcher.close()


def test_a_cancelled_job_leaves_the_batch_at_the_next_step(run, batcher):
    first_piece = threading.Event()
    job = Job([encode_seed(run.tokenizer, "the cat")[0]], Settings(length=1_000_000), [1],
              lambda job, events: first_piece.set())
    batcher.submit(job)
    assert first_piece.wait(10)
    assert batcher.running_rows == 1
    job.cancelled = True
    deadline = time.monotonic() + 10
    while batcher.running_rows and time.monotonic() < deadline:
        time.sleep(0.01)
    assert batcher.running_rows == 0
    assert not job.done  # nobody is told: its client is gone
    other, collector = make_job(run, ["a dog"], Settings(length=5), [2])  # the batch serves on
    batcher.submit(other)
    assert collector.finished.wait(10) and collector.finishes(1) == ["length"]


def test_zero_tokens_finishes_at_once(run, batcher):
    job, collector = make_job(run, ["the cat", "a dog"], Settings(length=0), [1, 2])
    batcher.submit(job)
    assert collector.finished.wait(10)
    assert collector.events == [(0, "", "length", None), (1, "", "length", None)] and batcher.steps == 0


def test_a_probe_gives_the_next_token_probabilities(run, batcher):
    ids = encode_seed(run.tokenizer, "the cat sat on")[0]
    answered = threading.Event()
    probe = Probe(ids, lambda probe, events: answered.set())
    batcher.submit(probe)
    assert answered.wait(10)
    expected = softmax(Stepper(run.weights).prefill([ids])[1])[0]
    np.testing.assert_allclose(probe.probs, expected, atol=1e-6)
    assert probe.detok.peek(run.tokenizer.index["mat"]) == " mat"  # after a word the next one takes a space
    assert probe.detok.peek(run.tokenizer.index["."]) == "."  # a mark takes none
    assert batcher.running_rows == 0


def test_rows_past_max_rows_wait_for_room(run):
    batcher = Batcher(run.tokenizer, run.weights, max_rows=2)
    made = [make_job(run, ["the cat", "a dog"], Settings(length=10), [i, i + 1]) for i in range(3)]
    for job, _ in made:
        batcher.submit(job)
    batcher.start()
    try:
        for _, collector in made:
            assert collector.finished.wait(10)
        assert batcher.widest == 2
    finally:
        batcher.close()


def test_a_failing_step_fails_its_jobs_and_the_batch_serves_on(run, batcher):
    def broken(job, events):
        raise RuntimeError("a bug")

    job = Job([encode_seed(run.tokenizer, "the cat")[0]], Settings(length=5), [1], broken)
    batcher.submit(job)
    deadline = time.monotonic() + 10
    while job.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.error == "generation failed: RuntimeError"
    other, collector = make_job(run, ["a dog"], Settings(length=5), [2])
    batcher.submit(other)
    assert collector.finished.wait(10) and other.error is None


def test_close_ends_running_and_queued_jobs_with_an_error(run):
    batcher = Batcher(run.tokenizer, run.weights).start()
    running, collector = make_job(run, ["the cat"], Settings(length=1_000_000), [1])
    batcher.submit(running)
    deadline = time.monotonic() + 10
    while not batcher.running_rows and time.monotonic() < deadline:
        time.sleep(0.01)
    batcher.close()
    assert collector.finished.is_set() and running.error == STOPPING
    late, late_collector = make_job(run, ["a dog"], Settings(length=5), [2])
    batcher.submit(late)
    assert late_collector.finished.is_set() and late.error == STOPPING
