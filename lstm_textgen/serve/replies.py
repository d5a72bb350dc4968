"""A request's events carried from its batch thread to its answer: the event loop woken once per step for all
requests (Mailbox), each request's events as its task reads them (Waiter), and the completion made of them,
streamed as Server-Sent Events or whole (Reply); a client that leaves cancels its job."""
from __future__ import annotations

import asyncio
import secrets
import threading
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lstm_textgen.serve import protocol
from lstm_textgen.serve.protocol import APIError, StopCut
from lstm_textgen.serve.scheduler import Job


class Mailbox:
    """Hands the batch threads' events over to the event loop, waking it once for all that arrive meanwhile
    (a wake-up per request per step would cost a system call each)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.lock, self.letters, self.woken = loop, threading.Lock(), [], False

    def post(self, waiter: "Waiter", events: list, done: bool, error: str | None) -> None:  # any thread
        with self.lock:
            self.letters.append((waiter, events, done, error))
            if self.woken:
                return
            self.woken = True
        self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            letters, self.letters, self.woken = self.letters, [], False
        for waiter, events, done, error in letters:
            waiter.arrive(events, done, error)


class Waiter:
    """A request's share of the batch thread's output, as its task on the event loop reads it."""

    def __init__(self, mailbox: Mailbox):
        self.mailbox, self.ready, self.events = mailbox, asyncio.Event(), []
        self.done, self.error = False, None

    def publish(self, job, events: list) -> None:  # the batch thread: what the job is now, with its events
        self.mailbox.post(self, events, job.done, job.error)

    def arrive(self, events: list, done: bool, error: str | None) -> None:
        self.events += events
        self.done, self.error = done, error
        self.ready.set()

    async def next(self) -> tuple[list, bool, str | None]:
        """Every event since the last call (several steps' when the client reads slower than the batch), and
        whether the job was done, or failed, after them: read together, so no later event is missed."""
        await self.ready.wait()
        self.ready.clear()
        events, self.events = self.events, []
        return events, self.done, self.error


class Reply:
    """A completion's answer, streamed or whole, made from its job's events; its rows go if the client does."""

    def __init__(self, job: Job, waiter: Waiter, model: str, seed: int, stops: list[str], prompt_tokens: int):
        self.job, self.waiter, self.model, self.seed, self.prompt_tokens = job, waiter, model, seed, prompt_tokens
        self.ident, self.created = f"cmpl-{secrets.token_hex(12)}", int(time.time())
        self.cuts = [StopCut(stops) for _ in job.rows_ids]
        self.chunk = protocol.ChunkWriter(self.ident, self.created, model, seed)

    async def _texts(self):
        """(row, text to send, finish reason) after each wait, a row's pieces joined, stop strings cut."""
        while True:
            joined: dict[int, list] = {}
            events, done, error = await self.waiter.next()
            for row, piece, finish in events:
                entry = joined.setdefault(row, ["", None])
                entry[0] += piece
                entry[1] = finish or entry[1]
            if error:
                raise APIError(503 if "stopping" in error else 500, error, kind="server_error")
            yield [(row, self.cuts[row].feed(text, finish), finish) for row, (text, finish) in sorted(joined.items())]
            if done:
                return

    def usage(self) -> dict:
        return protocol.usage(self.prompt_tokens, sum(self.job.tokens))

    async def stream(self, include_usage: bool):
        try:
            async for texts in self._texts():
                for row, text, finish in texts:
                    if text or finish:
                        yield self.chunk(row, text, finish)
            if include_usage:
                yield protocol.event({"id": self.ident, "object": "text_completion", "created": self.created,
                                      "model": self.model, "choices": [], "usage": self.usage()})
            yield protocol.DONE
        except APIError as e:  # the status line is sent already: the error is the stream's last event
            yield protocol.event(e.body())
        finally:
            self.job.cancelled = True  # a client gone mid-stream: its rows leave the batch at the next step

    async def whole(self, request: Request) -> Response:
        texts, finishes = [""] * len(self.job.rows_ids), [None] * len(self.job.rows_ids)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            async for step in _until(self._texts(), gone):
                for row, text, finish in step:
                    texts[row] += text
                    finishes[row] = finish or finishes[row]
        finally:
            gone.cancel()
            self.job.cancelled = True
        if not self.waiter.done:  # the client left: nobody reads this
            return Response(status_code=499)
        return JSONResponse(protocol.completion_object(self.ident, self.created, self.model,
                                                       list(zip(texts, finishes)), self.usage(), self.seed))


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _until(steps, gone: asyncio.Future):
    """The items of an async iterator until the future `gone` completes."""
    while True:
        item = asyncio.ensure_future(anext(steps, None))
        await asyncio.wait({item, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not item.done():
            item.cancel()
            return
        if item.result() is None:
            return
        yield item.result()
