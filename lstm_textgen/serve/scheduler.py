"""The serving batch: one thread per served run owns a decode Batch (generation/decode.py). Between two steps it
takes in the requests that arrived (prefilled together), then draws every row under its own request's settings,
hands out the pieces, and lets go of rows that finished or whose client left; the rest step on as one numpy batch.

A row is the same Row that generate decodes (its own random generator, history, detokenizer and stop rule), drawn
as generate draws it, so a request's text is generate's with the same settings and random seeds. Nothing here
knows HTTP: a Job's publish() is called from this thread after each step.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.generation.decode import Batch, Row, Score
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.text.tokenizer import Tokenizer

log = logging.getLogger(__name__)
STOPPING = "the server is stopping"


class Job:
    """One completion request: a row per prompt id list, all under one settings; publish(job, events) hears
    of each step's pieces, as (row, text, finish reason or None, the token's Score or None), and of the end
    (job.done, job.error). logprobs: None, or the alternatives each token's Score lists."""

    def __init__(self, rows_ids: list[list[int]], settings: GenerateConfig, random_seeds: list[int],
                 publish: Callable[["Job", list[tuple[int, str, str | None, Score | None]]], None],
                 logprobs: int | None = None):
        self.rows_ids, self.settings, self.random_seeds, self.publish = rows_ids, settings, random_seeds, publish
        self.logprobs = logprobs
        self.rows_left = len(rows_ids)
        self.tokens = [0] * len(rows_ids)  # tokens made per row, for usage
        self.cancelled = False  # set by any thread: its client left; its rows go at the next step
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.rows_left == 0 or self.error is not None


class Probe:
    """A suggest request: the next-token probabilities after ids; publish(probe, []) once probs is set."""

    def __init__(self, ids: list[int], publish: Callable[["Probe", list], None]):
        self.ids, self.publish = ids, publish
        self.probs: np.ndarray | None = None
        self.detok = None  # a detokenizer primed with ids: detok.peek(token) is how a next token would be written
        self.cancelled, self.error = False, None

    @property
    def done(self) -> bool:
        return self.probs is not None or self.error is not None


class Batcher:
    """The batch of one served run, stepped by its own thread: submit() jobs and probes from any thread."""

    def __init__(self, tokenizer: Tokenizer, weights: ModelWeights, max_rows: int = 128, name: str = "run"):
        self.tokenizer, self.max_rows = tokenizer, max_rows
        self.memo: dict = {}  # the detokenizers' memo, shared by every row (only this thread touches it)
        self.steps, self.widest = 0, 0  # batched steps so far and the most rows one held (tests, benchmarks)
        self._pending: deque = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._batch = Batch(Stepper(weights))
        self._thread = threading.Thread(target=self._run, name=f"batch {name}", daemon=True)

    def start(self) -> "Batcher":
        self._thread.start()
        return self

    def submit(self, job: Job | Probe) -> None:
        with self._wake:
            if self._closing:
                job.error = STOPPING
                job.publish(job, [])
                return
            self._pending.append(job)
            self._wake.notify()

    @property
    def stepper(self) -> Stepper:
        """The run's numpy stepper (its methods change nothing in it: other threads may score with it too)."""
        return self._batch.stepper

    @property
    def running_rows(self) -> int:
        return len(self._batch.rows)

    @property
    def serving(self) -> bool:
        """Whether the thread is stepping the batch (started, not closing)."""
        return self._thread.is_alive() and not self._closing

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current step; requests still queued or running end with an error."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._pending or self._batch.rows or self._closing):
                    self._wake.wait()
                if self._closing:
                    break
                arrived = self._take_pending()
            try:
                self._admit(arrived)
                if self._batch.rows:
                    self._step()
            except Exception as e:  # a bug: fail the requests in hand, keep serving the next ones
                log.exception("generation failed")
                self._fail([*arrived, *self._jobs()], f"generation failed: {type(e).__name__}")
                self._batch = Batch(self._batch.stepper)
        with self._wake:
            self._fail([*self._pending, *self._jobs()], STOPPING)
            self._pending.clear()

    def _jobs(self) -> list:
        """The jobs of the running rows, each once."""
        return list({id(row.group): row.group for row in self._batch.rows}.values())

    def _take_pending(self) -> list:
        """The queued requests that fit beside the running rows (probes always do; a job alone always does)."""
        taken, room = [], self.max_rows - len(self._batch.rows)
        while self._pending:
            job = self._pending[0]
            need = len(job.rows_ids) if isinstance(job, Job) else 0
            if need > room and (taken or self._batch.rows):
                break
            taken.append(self._pending.popleft())
            room -= need
        return taken

    def _admit(self, arrived: list) -> None:
        """Prefill the new rows (and probes) in one batch and join the rows to the running batch."""
        arrived = [job for job in arrived if not job.cancelled]
        rows = [Row(self.tokenizer, ids, job.settings, job.random_seeds[i], self.memo, group=job, index=i,
                    logprobs=job.logprobs)
                for job in arrived if isinstance(job, Job) for i, ids in enumerate(job.rows_ids)]
        probes = [probe for probe in arrived if isinstance(probe, Probe)]
        finished = [row for row in rows if row.finish]  # max_tokens 0: nothing to generate
        for job in {id(row.group): row.group for row in finished}.values():
            job.rows_left = 0
            job.publish(job, [(row.index, "", "length", None) for row in finished if row.group is job])
        for probe, logits in zip(probes, self._batch.admit(rows, [probe.ids for probe in probes])):
            self._answer(probe, logits)

    def _answer(self, probe: Probe, logits: np.ndarray) -> None:
        probe.probs = softmax(logits[None])[0]
        probe.detok = self.tokenizer.detokenizer()  # its own, with no memo: it is read on another thread
        for i in probe.ids:
            probe.detok.piece(i)
        probe.publish(probe, [])

    def _step(self) -> None:
        """Draw a token for every row, hand out the pieces, let finished rows go, step the rest."""
        batch = self._batch
        batch.drop(lambda row: row.group.cancelled)
        self.steps, self.widest = self.steps + 1, max(self.widest, len(batch.rows))
        if not batch.rows:
            return
        events: dict = {}
        for row, piece in batch.advance():
            job = row.group
            job.tokens[row.index] += 1
            job.rows_left -= row.finish is not None
            events.setdefault(id(job), (job, []))[1].append((row.index, piece, row.finish, row.score))
        for job, job_events in events.values():
            job.publish(job, sorted(job_events, key=lambda e: e[0]))

    def _fail(self, jobs: list, message: str) -> None:
        for job in jobs:
            if not (job.cancelled or job.done):
                job.error = message
                try:
                    job.publish(job, [])
                except Exception:  # its listener is broken too: the job is failed all the same
                    log.exception("could not report the failure")
