"""The routes of `serve`: OpenAI-style /v1/completions (streamed as Server-Sent Events on request) and
/v1/models, our /v1/suggest, and the writing page at /, over one Batcher per served run.

Starlette, not FastAPI: there are five routes, and their bodies are checked by protocol.py against
GenerateConfig's own ranges, so each error names the field as the request spelled it; FastAPI's pydantic
models would repeat those ranges and add pydantic to the start-up. Starlette's StreamingResponse ends the
stream when the client disconnects, which is what frees a request's rows in the batch.
"""
from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lstm_textgen.errors import TextgenError
from lstm_textgen.interactive import top_ids
from lstm_textgen.rundir import Run
from lstm_textgen.sample import encode_seed, new_random_seed
from lstm_textgen.serve import protocol
from lstm_textgen.serve.protocol import MAX_BODY_BYTES, APIError, StopCut
from lstm_textgen.serve.scheduler import Batcher, Job, Probe
from lstm_textgen.tokenizer import Detokenizer
from lstm_textgen.values import shown

_DRAIN_BYTES = 16 * MAX_BODY_BYTES  # an oversized body is read and dropped up to this, so the 413 arrives whole


@dataclass
class Served:
    """One run behind the server: its name (the API's model), the run, its batch and its `info` figures."""
    name: str
    run: Run
    batcher: Batcher
    info: dict
    created: int


class _Mailbox:
    """Hands the batch threads' events over to the event loop, waking it once for all that arrive meanwhile
    (a wake-up per request per step would cost a system call each)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.lock, self.letters, self.woken = loop, threading.Lock(), [], False

    def post(self, waiter: "_Waiter", events: list, done: bool, error: str | None) -> None:  # any thread
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


class _Waiter:
    """A request's share of the batch thread's output, as its task on the event loop reads it."""

    def __init__(self, mailbox: _Mailbox):
        self.mailbox, self.ready, self.events = mailbox, asyncio.Event(), []
        self.done, self.error = False, None

    def publish(self, job, events: list) -> None:  # the batch thread: what the job is now, with its events
        self.mailbox.post(self, events, job.done, job.error)

    def arrive(self, events: list, done: bool, error: str | None) -> None:
        self.events += events
        self.done, self.error = done, error
        self.ready.set()

    async def next(self) -> list:
        """Every event since the last call (several steps' when the client reads slower than the batch)."""
        await self.ready.wait()
        self.ready.clear()
        events, self.events = self.events, []
        return events


def build_app(served: dict[str, Served], api_key: str | None, max_tokens_cap: int) -> Starlette:
    """The ASGI app; the batches start with it and stop when it shuts down."""
    page = resources.files("lstm_textgen.serve").joinpath("page.html").read_text(encoding="utf-8")
    mailboxes: list[_Mailbox] = []  # the one of the running event loop, made when the app starts

    def authorize(request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if api_key and not (scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), api_key.encode())):
            raise APIError(401, "missing or wrong API key; send the header Authorization: Bearer KEY",
                           code="invalid_api_key")

    def find(model: str) -> Served:
        if model not in served:
            raise APIError(404, f"no model {shown(model)} on this server; GET /v1/models lists them",
                           "model", "model_not_found")
        return served[model]

    async def models(request: Request) -> Response:
        authorize(request)
        return JSONResponse({"object": "list", "data": [_model_object(s) for s in served.values()]})

    async def model(request: Request) -> Response:
        authorize(request)
        return JSONResponse(_model_object(find(request.path_params["model"])))

    async def completions(request: Request) -> Response:
        authorize(request)
        completion = protocol.parse_completion(protocol.parse_json(await _read_body(request)), max_tokens_cap)
        target = find(completion.model)
        settings = protocol.completion_settings(completion, target.run.config.generate, max_tokens_cap)
        prompts = [_encode(target.run, prompt, "prompt") for prompt in completion.prompts]
        rows = [ids for ids, _ in prompts for _ in range(completion.n)]
        seed = new_random_seed() if completion.seed is None else completion.seed
        waiter = _Waiter(mailboxes[0])
        job = Job(rows, settings, [seed + i for i in range(len(rows))], waiter.publish)
        target.batcher.submit(job)
        reply = _Reply(job, waiter, target.name, seed, settings.stop, sum(len(ids) for ids, _ in prompts))
        if completion.stream:
            return StreamingResponse(reply.stream(completion.include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return await reply.whole(request)

    async def suggest(request: Request) -> Response:
        authorize(request)
        name, text, k = protocol.parse_suggest(protocol.parse_json(await _read_body(request)))
        target = find(name)
        ids, unknown = _encode(target.run, text, "text")
        waiter = _Waiter(mailboxes[0])
        probe = Probe(ids, waiter.publish)
        target.batcher.submit(probe)
        try:
            await waiter.next()
        finally:
            probe.cancelled = True
        if probe.error:
            raise APIError(503, probe.error, kind="server_error")
        tokenizer, detok = target.run.tokenizer, Detokenizer(target.run.tokenizer)
        options = []
        for token_id, probability in top_ids(probe.probs, k):
            detok.glue_next = probe.glue_next
            options.append({"token": tokenizer.vocab[token_id], "probability": probability,
                            "text": detok.piece(token_id)})  # how generation would write it after the text
        return JSONResponse({"model": name, "text": text, "next": options, "unknown_seed_words": unknown})

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    @asynccontextmanager
    async def lifespan(app):
        mailboxes[:] = [_Mailbox(asyncio.get_running_loop())]
        for target in served.values():
            target.batcher.start()
        try:
            yield
        finally:
            for target in served.values():
                await asyncio.to_thread(target.batcher.close)

    routes = [Route("/", index), Route("/v1/models", models), Route("/v1/models/{model:path}", model),
              Route("/v1/completions", completions, methods=["POST"]), Route("/v1/suggest", suggest, methods=["POST"])]
    handlers = {APIError: _api_error, HTTPException: _http_error, Exception: _server_error}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)


def _model_object(target: Served) -> dict:
    return {"id": target.name, "object": "model", "created": target.created, "owned_by": "lstm-textgen",
            "info": target.info}


def _encode(run: Run, text: str, param: str) -> tuple[list[int], list[str]]:
    try:
        return encode_seed(run.tokenizer, text)
    except TextgenError as e:
        message = f"{param} is empty; send some text to continue" if not text.strip() else str(e)
        raise APIError(400, message, param, "invalid_value") from None


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 past MAX_BODY_BYTES (read on and dropped, so the client hears why)."""
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size <= MAX_BODY_BYTES:
            parts.append(part)
        elif size > _DRAIN_BYTES:
            break
    if size > MAX_BODY_BYTES:
        raise APIError(413, f"the request body is over {MAX_BODY_BYTES:,} bytes; send a shorter prompt",
                       code="request_too_large")
    return b"".join(parts)


class _Reply:
    """A completion's answer, streamed or whole, made from its job's events; its rows go if the client does."""

    def __init__(self, job: Job, waiter: _Waiter, model: str, seed: int, stops: list[str], prompt_tokens: int):
        self.job, self.waiter, self.model, self.seed, self.prompt_tokens = job, waiter, model, seed, prompt_tokens
        self.ident, self.created = f"cmpl-{secrets.token_hex(12)}", int(time.time())
        self.cuts = [StopCut(stops) for _ in job.rows_ids]
        self.chunk = protocol.ChunkWriter(self.ident, self.created, model, seed)

    async def _texts(self):
        """(row, text to send, finish reason) after each wait, a row's pieces joined, stop strings cut."""
        while True:
            joined: dict[int, list] = {}
            for row, piece, finish in await self.waiter.next():
                entry = joined.setdefault(row, ["", None])
                entry[0] += piece
                entry[1] = finish or entry[1]
            if self.waiter.error:
                raise APIError(503 if "stopping" in self.waiter.error else 500, self.waiter.error, kind="server_error")
            yield [(row, self.cuts[row].feed(text, finish), finish) for row, (text, finish) in sorted(joined.items())]
            if self.waiter.done:
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


async def _api_error(request: Request, error: APIError) -> Response:
    return JSONResponse(error.body(), status_code=error.status)


async def _http_error(request: Request, error: HTTPException) -> Response:
    message = {404: f"no such path {shown(request.url.path)}; the API is under /v1",
               405: f"{request.method} is not allowed on {shown(request.url.path)}"}
    code = {404: "not_found", 405: "method_not_allowed"}
    return await _api_error(request, APIError(error.status_code, message.get(error.status_code, str(error.detail)),
                                              code=code.get(error.status_code)))


async def _server_error(request: Request, error: Exception) -> Response:
    return await _api_error(request, APIError(500, f"internal error ({type(error).__name__})", kind="server_error"))
