"""What goes back to a request: the completion objects and Server-Sent Event chunks in OpenAI's shape, stop
strings cut as OpenAI cuts them, and the request's events carried from its batch thread to its answer (the event
loop woken once per step for all requests: Mailbox; each request's events as its task reads them: Waiter; the
completion made of them, streamed or whole: Reply); a client that leaves cancels its job."""
from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from typing import Callable, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lstm_textgen.serve.protocol import APIError
from lstm_textgen.serve.scheduler import Job


class StopCut:
    """A row's text as OpenAI returns it: generation ends at a stop string, and the stop string is left out.

    Streaming holds back the end of the text while it could still become a stop string.
    """

    def __init__(self, stops: list[str]):
        self.stops, self.held = stops, ""

    def feed(self, text: str, finish: str | None) -> str:
        """The text that can be sent now, given the row's new text and whether it has finished."""
        text, self.held = self.held + text, ""
        if finish == "stop":
            cuts = [text.find(s) for s in self.stops if s in text]
            return text[:min(cuts)] if cuts else text
        if finish is None:
            keep = max((k for s in self.stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
            text, self.held = text[:len(text) - keep], text[len(text) - keep:]
        return text


def completion_object(ident: str, created: int, model: str, choices: list[tuple[str, str]], usage: dict,
                      seed: int) -> dict:
    """A whole /v1/completions answer; seed (our own field) repeats the request exactly."""
    return {"id": ident, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": i, "logprobs": None, "finish_reason": finish}
                        for i, (text, finish) in enumerate(choices)],
            "usage": usage, "seed": seed}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def event(data: dict | str) -> bytes:
    """One Server-Sent Event."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n".encode()


class ChunkWriter:
    """One streamed piece of one choice, in OpenAI's chunk format; the parts that never change are encoded once
    (a stream sends thousands of chunks)."""

    def __init__(self, ident: str, created: int, model: str, seed: int):
        head = {"id": ident, "object": "text_completion", "created": created, "model": model, "seed": seed}
        self.head = "data: " + json.dumps(head, ensure_ascii=False)[:-1] + ', "choices": [{"text": '

    def __call__(self, index: int, text: str, finish: str | None) -> bytes:
        tail = f', "index": {index}, "logprobs": null, "finish_reason": {json.dumps(finish)}}}]}}\n\n'
        return (self.head + json.dumps(text, ensure_ascii=False) + tail).encode()


DONE = event("[DONE]")


class Shape(NamedTuple):
    """What a reply is made as: its id's prefix, its chunks' object name, the chunk writer and the whole answer."""
    prefix: str
    chunk_object: str
    writer: Callable
    whole: Callable


TEXT = Shape("cmpl", "text_completion", ChunkWriter, completion_object)


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

    def __init__(self, job: Job, waiter: Waiter, model: str, seed: int, stops: list[str], prompt_tokens: int,
                 shape: Shape = TEXT):
        self.job, self.waiter, self.model, self.seed, self.prompt_tokens = job, waiter, model, seed, prompt_tokens
        self.shape, self.ident, self.created = shape, f"{shape.prefix}-{secrets.token_hex(12)}", int(time.time())
        self.cuts = [StopCut(stops) for _ in job.rows_ids]
        self.chunk = shape.writer(self.ident, self.created, model, seed)

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
        return usage(self.prompt_tokens, sum(self.job.tokens))

    async def stream(self, include_usage: bool):
        try:
            async for texts in self._texts():
                for row, text, finish in texts:
                    if text or finish:
                        yield self.chunk(row, text, finish)
            if include_usage:
                yield event({"id": self.ident, "object": self.shape.chunk_object, "created": self.created,
                                      "model": self.model, "choices": [], "usage": self.usage()})
            yield DONE
        except APIError as e:  # the status line is sent already: the error is the stream's last event
            yield event(e.body())
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
        return JSONResponse(self.shape.whole(self.ident, self.created, self.model,
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
