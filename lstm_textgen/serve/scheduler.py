"""The serving batch: one thread per served run owns a Stepper batch. Between two steps it takes in the requests
that arrived (prefilled together), then draws every row under its own request's settings, hands out the pieces,
and lets go of rows that finished or whose client left; the rest step on as one numpy batch.

A row draws exactly as Generator draws it (sample.py): its own random generator, history, detokenizer and stop
rule, and draw_rows() over its request's running rows, so a request's text is generate's with the same settings
and random seeds. Nothing here knows HTTP: a Job's publish() is called from this thread after each step.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

import numpy as np

from lstm_textgen.config import GenerateConfig
from lstm_textgen.model.weights import ModelWeights
from lstm_textgen.model.stepper import Stepper, softmax
from lstm_textgen.generation.rules import RULES, History
from lstm_textgen.generation.sample import Stopper, draw_rows
from lstm_textgen.text.tokenizer import Tokenizer

log = logging.getLogger(__name__)
STOPPING = "the server is stopping"


class Job:
    """One completion request: a row per prompt id list, all under one settings; publish(job, events) hears
    of each step's pieces, as (row, text, finish reason or None), and of the end (job.done, job.error)."""

    def __init__(self, rows_ids: list[list[int]], settings: GenerateConfig, random_seeds: list[int],
                 publish: Callable[["Job", list[tuple[int, str, str | None]]], None]):
        self.rows_ids, self.settings, self.random_seeds, self.publish = rows_ids, settings, random_seeds, publish
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
        self.glue_next = True  # the detokenizer's spacing state after ids: how a next word would be written
        self.cancelled, self.error = False, None

    @property
    def done(self) -> bool:
        return self.probs is not None or self.error is not None


class _Row:
    """One running row: its draws, history, text and stop rule, as Generator keeps them."""

    def __init__(self, job: Job, index: int, tokenizer: Tokenizer, memo: dict):
        ids, settings = job.rows_ids[index], job.settings
        self.job, self.index = job, index
        self.rng = np.random.default_rng(job.random_seeds[index])
        self.history = History(ids, settings.no_repeat_ngram_size)
        self.pieces = tokenizer.detokenizer(memo)
        for i in ids:
            self.pieces.piece(i)  # prime spacing and quote state with the prompt
        self.stopper = Stopper(settings)

    def take(self, token: int) -> tuple[str, str | None]:
        """Add the drawn token: its text, and "stop" or "length" when the row is finished."""
        self.history.append(token)
        piece = self.pieces.piece(token)
        self.job.tokens[self.index] += 1
        if self.stopper.done(piece):
            return piece + self.pieces.flush(), "stop"
        if self.stopper.count >= self.job.settings.length:  # a character left unfinished (bpe) ends as U+FFFD
            return piece + self.pieces.flush(), "length"
        return piece, None


class Batcher:
    """The batch of one served run, stepped by its own thread: submit() jobs and probes from any thread."""

    def __init__(self, tokenizer: Tokenizer, weights: ModelWeights, max_rows: int = 128, name: str = "run"):
        self.tokenizer, self.stepper, self.max_rows = tokenizer, Stepper(weights), max_rows
        self.memo: dict = {}  # the detokenizers' memo, shared by every row (only this thread touches it)
        self.steps, self.widest = 0, 0  # batched steps so far and the most rows one held (tests, benchmarks)
        self._pending: deque = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._rows: list[_Row] = []
        self._state, self._logits = None, None
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
    def running_rows(self) -> int:
        return len(self._rows)

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
                while not (self._pending or self._rows or self._closing):
                    self._wake.wait()
                if self._closing:
                    break
                arrived = self._take_pending()
            try:
                self._admit(arrived)
                if self._rows:
                    self._step()
            except Exception as e:  # a bug: fail the requests in hand, keep serving the next ones
                log.exception("generation failed")
                self._fail([*arrived, *{row.job: None for row in self._rows}], f"generation failed: {type(e).__name__}")
                self._rows, self._state, self._logits = [], None, None
        with self._wake:
            self._fail([*self._pending, *{row.job: None for row in self._rows}], STOPPING)
            self._pending.clear()

    def _take_pending(self) -> list:
        """The queued requests that fit beside the running rows (probes always do; a job alone always does)."""
        taken, room = [], self.max_rows - len(self._rows)
        while self._pending:
            job = self._pending[0]
            need = len(job.rows_ids) if isinstance(job, Job) else 0
            if need > room and (taken or self._rows):
                break
            taken.append(self._pending.popleft())
            room -= need
        return taken

    def _admit(self, arrived: list) -> None:
        """Prefill the new rows (and probes) in one batch and join the rows to the running batch."""
        arrived = [job for job in arrived if not job.cancelled]
        for job in arrived:
            if isinstance(job, Job) and job.settings.length == 0:  # nothing to generate
                job.rows_left = 0
                job.publish(job, [(row, "", "length") for row in range(len(job.rows_ids))])
        jobs = [job for job in arrived if isinstance(job, Job) and job.settings.length > 0]
        probes = [probe for probe in arrived if isinstance(probe, Probe)]
        seeds = [ids for job in jobs for ids in job.rows_ids] + [probe.ids for probe in probes]
        if not seeds:
            return
        state, logits = self.stepper.prefill(seeds)
        new_rows = [_Row(job, i, self.tokenizer, self.memo) for job in jobs for i in range(len(job.rows_ids))]
        for probe, row_logits in zip(probes, logits[len(new_rows):]):
            self._answer(probe, row_logits)
        if not new_rows:
            return
        rows = list(range(len(new_rows)))
        state, logits = self.stepper.select_rows(state, rows), logits[:len(new_rows)]
        if self._rows:
            state, logits = self.stepper.join_rows(self._state, state), np.concatenate([self._logits, logits])
        self._rows += new_rows
        self._state, self._logits = state, logits

    def _answer(self, probe: Probe, logits: np.ndarray) -> None:
        probe.probs = softmax(logits[None])[0]
        pieces = self.tokenizer.detokenizer(self.memo)
        for i in probe.ids:
            pieces.piece(i)
        probe.glue_next = pieces.glue_next
        probe.publish(probe, [])

    def _step(self) -> None:
        """Draw a token for every row, hand out the pieces, let finished rows go, step the rest."""
        rows, logits = self._rows, self._logits
        self.steps, self.widest = self.steps + 1, max(self.widest, len(rows))
        next_ids, keep, events = np.zeros(len(rows), np.intp), [], {}
        for where in _draw_groups(rows):
            part = logits[where] if len(where) < len(rows) else logits
            settings = rows[where[0]].job.settings
            tokens = draw_rows(part, settings, [rows[i].rng for i in where], [rows[i].history for i in where])
            for i, token in zip(where, tokens.tolist()):
                row = rows[i]
                piece, finish = row.take(token)
                events.setdefault(row.job, []).append((row.index, piece, finish))
                next_ids[i] = token
                if finish:
                    row.job.rows_left -= 1
                else:
                    keep.append(i)
        for job, job_events in events.items():
            job.publish(job, sorted(job_events))
        if len(keep) < len(rows):
            keep.sort()
            self._rows = [rows[i] for i in keep]
            self._state = self.stepper.select_rows(self._state, keep) if keep else None
            next_ids = next_ids[keep]
        self._logits = None
        if self._rows:
            self._logits, self._state = self.stepper.step(self._state, next_ids)

    def _fail(self, jobs: list, message: str) -> None:
        for job in jobs:
            if not (job.cancelled or job.done):
                job.error = message
                try:
                    job.publish(job, [])
                except Exception:  # its listener is broken too: the job is failed all the same
                    log.exception("could not report the failure")


def _draw_groups(rows: list[_Row]) -> list[list[int]]:
    """The running rows (positions) of requests that are not cancelled, grouped to be drawn in one call.

    Rows whose requests draw under the same rules are drawn together: draw_rows() picks for each row what it
    would pick for that row alone, except for a lone row under top-k or top-p, which it draws among the tokens
    left; such a row (a request with one row running, as Generator would draw it) is drawn alone.
    """
    groups: dict[object, list[int]] = {}
    running: dict[Job, int] = {}
    for row in rows:
        running[row.job] = running.get(row.job, 0) + 1
    for i, row in enumerate(rows):
        job, settings = row.job, row.job.settings
        if job.cancelled:
            continue
        narrowed = settings.top_k or settings.top_p < 1.0
        key = job if narrowed and running[job] == 1 else (settings.greedy, *(getattr(settings, n) for n in RULES))
        groups.setdefault(key, []).append(i)
    return list(groups.values())
