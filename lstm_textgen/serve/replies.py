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

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lstm_textgen.config.values import shown
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


class Token(NamedTuple):
    """A scored token of a choice: its text, its log-probability (None for a prompt's first token, which nothing
    predicts), the likeliest tokens at its place as (text, log-probability), and where its text starts in the
    choice's text."""
    text: str
    logprob: float | None
    top: list[tuple[str, float]] | None
    offset: int


def completion_object(ident: str, created: int, model: str, choices: list[tuple[str, str, dict | None]],
                      usage: dict, seed: int) -> dict:
    """A whole /v1/completions answer; seed (our own field) repeats the request exactly."""
    return {"id": ident, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": i, "logprobs": logprobs, "finish_reason": finish}
                        for i, (text, finish, logprobs) in enumerate(choices)],
            "usage": usage, "seed": seed}


def legacy_logprobs(tokens: list[Token]) -> dict:
    """OpenAI's legacy completions logprobs: parallel lists, the alternatives as {text: log-probability}."""
    return {"tokens": [t.text for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [None if t.top is None else _by_text(t.top) for t in tokens],
            "text_offset": [t.offset for t in tokens]}


def _by_text(top: list[tuple[str, float]]) -> dict:
    """{text: log-probability}, likeliest first; two tokens that write the same text keep the likelier."""
    alternatives: dict = {}
    for text, logprob in top:
        alternatives.setdefault(text, logprob)
    return alternatives


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

    def __call__(self, index: int, text: str, finish: str | None, tokens: list[Token] | None = None) -> bytes:
        logprobs = "null" if tokens is None else json.dumps(legacy_logprobs(tokens), ensure_ascii=False)
        tail = f', "index": {index}, "logprobs": {logprobs}, "finish_reason": {json.dumps(finish)}}}]}}\n\n'
        return (self.head + json.dumps(text, ensure_ascii=False) + tail).encode()


DONE = event("[DONE]")


class Shape(NamedTuple):
    """What a reply is made as: its id's prefix, its chunks' object name, the chunk writer, the whole answer and
    its choices' logprobs object."""
    prefix: str
    chunk_object: str
    writer: Callable
    whole: Callable
    logprobs: Callable


TEXT = Shape("cmpl", "text_completion", ChunkWriter, completion_object, legacy_logprobs)


class Mailbox:
    """Hands the batch threads' events over to the event loop, waking it once for all that arrive meanwhile
    (a wake-up per request per step would cost a system call each).

    With many requests streaming, handing out every step's pieces at once would keep the event loop (and the
    GIL) busy writing a chunk per request per step, slowing the batch it waits on; so deliveries are at least
    PER_WAITER seconds per request of the last delivery apart (at most MAX_GAP): one stream gets every step,
    32 streams a chunk of a few tokens (benchmarks/serve.py, reference size: 3.2-5.0x one client's tokens/s at 32
    clients over four runs, from 3.4x with a delivery per step; time to first token a few ms later)."""

    PER_WAITER, MAX_GAP = 250e-6, 10e-3

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.lock, self.letters, self.woken = loop, threading.Lock(), [], False
        self.last, self.gap = 0.0, 0.0  # when the last delivery was, and the gap the next one keeps after it

    def post(self, waiter: "Waiter", events: list, done: bool, error: str | None) -> None:  # any thread
        with self.lock:
            self.letters.append((waiter, events, done, error))
            if self.woken:
                return
            self.woken = True
        self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        wait = self.last + self.gap - self.loop.time()
        if wait > 0:
            self.loop.call_later(wait, self._deliver)
            return
        with self.lock:
            letters, self.letters, self.woken = self.letters, [], False
        self.last = self.loop.time()
        self.gap = min(self.MAX_GAP, self.PER_WAITER * len({id(letter[0]) for letter in letters}))
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
    """A completion's answer, streamed or whole, made from its job's events; its rows go if the client does.
    echoes: each row's prompt as (its text, its scored tokens) when the request asked for echo; the choice's text
    starts with it."""

    def __init__(self, job: Job, waiter: Waiter, model: str, seed: int, stops: list[str], prompt_tokens: int,
                 shape: Shape = TEXT, echoes: list[tuple[str, list[Token]]] | None = None):
        self.job, self.waiter, self.model, self.seed, self.prompt_tokens = job, waiter, model, seed, prompt_tokens
        self.shape, self.ident, self.created = shape, f"{shape.prefix}-{secrets.token_hex(12)}", int(time.time())
        self.cuts = [StopCut(stops) for _ in job.rows_ids]
        self.chunk = shape.writer(self.ident, self.created, model, seed)
        self.scored = job.logprobs is not None
        self.echoes = echoes or [("", []) for _ in job.rows_ids]
        self.offsets = [len(text) for text, _ in self.echoes]  # where each row's next token starts in its text

    async def _texts(self):
        """(row, text to send, finish reason, its scored tokens or None) after each wait, a row's pieces joined,
        stop strings cut."""
        while True:
            joined: dict[int, list] = {}
            events, done, error = await self.waiter.next()
            for row, piece, finish, score in events:
                entry = joined.setdefault(row, ["", None, []])
                entry[0] += piece
                entry[1] = finish or entry[1]
                if score is not None:
                    entry[2].append(Token(piece, score.logprob, score.top, self.offsets[row]))
                self.offsets[row] += len(piece)
            if error:
                raise APIError(503 if "stopping" in error else 500, error, kind="server_error")
            yield [(row, self.cuts[row].feed(text, finish), finish, tokens if self.scored else None)
                   for row, (text, finish, tokens) in sorted(joined.items())]
            if done:
                return

    def usage(self) -> dict:
        return usage(self.prompt_tokens, sum(self.job.tokens))

    async def stream(self, include_usage: bool):
        try:
            for row, (text, tokens) in enumerate(self.echoes):
                if text:  # the prompt first, as OpenAI's legacy completions echoed it
                    yield self.chunk(row, text, None, tokens if self.scored else None)
            async for texts in self._texts():
                for row, text, finish, tokens in texts:
                    if text or finish or tokens:
                        yield self.chunk(row, text, finish, tokens)
            if include_usage:
                yield event({"id": self.ident, "object": self.shape.chunk_object, "created": self.created,
                                      "model": self.model, "choices": [], "usage": self.usage()})
            yield DONE
        except APIError as e:  # the status line is sent already: the error is the stream's last event
            yield event(e.body())
        finally:
            self.job.cancelled = True  # a client gone mid-stream: its rows leave the batch at the next step

    async def whole(self, request: Request) -> Response:
        texts = [text for text, _ in self.echoes]
        tokens = [list(echoed) for _, echoed in self.echoes]
        finishes = [None] * len(self.job.rows_ids)
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            async for step in _until(self._texts(), gone):
                for row, text, finish, scored in step:
                    texts[row] += text
                    finishes[row] = finish or finishes[row]
                    tokens[row] += scored or []
        finally:
            gone.cancel()
            self.job.cancelled = True
        if not self.waiter.done:  # the client left: nobody reads this
            return Response(status_code=499)
        choices = [(text, finish, self.shape.logprobs(_sent(row_tokens, text, finish)) if self.scored else None)
                   for text, finish, row_tokens in zip(texts, finishes, tokens)]
        return JSONResponse(self.shape.whole(self.ident, self.created, self.model, choices, self.usage(), self.seed))


def _sent(tokens: list[Token], text: str, finish: str | None) -> list[Token]:
    """The tokens of a choice's text: where a stop string cut it, the tokens after the cut are left out."""
    return [t for t in tokens if t.offset < len(text)] if finish == "stop" else tokens


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


# The exception handlers: every refusal as OpenAI's error object, with its status

async def api_error(request: Request, error: APIError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None  # RFC 6750: the scheme to use
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def http_error(request: Request, error: HTTPException) -> Response:
    message = {404: f"no such path {shown(request.url.path)}; the API is under /v1",
               405: f"{request.method} is not allowed on {shown(request.url.path)}"}
    code = {404: "not_found", 405: "method_not_allowed"}
    return await api_error(request, APIError(error.status_code, message.get(error.status_code, str(error.detail)),
                                              code=code.get(error.status_code)))


async def server_error(request: Request, error: Exception) -> Response:
    return await api_error(request, APIError(500, f"internal error ({type(error).__name__})", kind="server_error"))
