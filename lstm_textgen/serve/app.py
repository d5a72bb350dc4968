"""The routes of `serve` over one Batcher per served run: OpenAI-style /v1/completions and /v1/chat/completions
(streamed as Server-Sent Events on request) and /v1/models, our /v1/suggest and /v1/inspect, vLLM's tokenizer
routes (tools.py), the pages at / and /inspect, and /health and /metrics; the access log and CORS (when asked
for) wrap them as middleware.

Starlette, not FastAPI: the bodies are checked by protocol.py against GenerateConfig's own ranges, so each error
names the field as the request spelled it; FastAPI's pydantic models would repeat those ranges and add pydantic
to the start-up. Starlette's StreamingResponse ends the stream when the client disconnects, which frees a
request's rows in the batch.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from lstm_textgen.errors import TextgenError
from lstm_textgen.generation.interactive import top_ids
from lstm_textgen.run.rundir import Run
from lstm_textgen.generation import inspect as inside
from lstm_textgen.generation.sample import encode_seed, encode_text, new_random_seed
from lstm_textgen.serve import protocol, tools
from lstm_textgen.serve.operations import CORS, AccessLog, Metrics
from lstm_textgen.serve.pages import inspect_page, page
from lstm_textgen.serve.protocol import MAX_BODY_BYTES, APIError
from lstm_textgen.serve.chat import CHAT, parse_chat
from lstm_textgen.serve.chat import template as chat_template
from lstm_textgen.serve.replies import TEXT, Mailbox, Reply, Waiter, api_error, http_error, server_error
from lstm_textgen.serve.scheduler import Batcher, Job, Probe
from lstm_textgen.config.values import shown

_DRAIN_BYTES = 16 * MAX_BODY_BYTES  # an oversized body is read and dropped up to this, so the 413 arrives whole


@dataclass
class Served:
    """One run behind the server: its name (the API's model), the run, its batch and its `info` figures."""
    name: str
    run: Run
    batcher: Batcher
    info: dict
    created: int


def build_app(served: dict[str, Served], api_key: str | None, max_tokens_cap: int, cors_origins: list[str] = (),
              log_format: str = "text", log_stream=None) -> Starlette:
    """The ASGI app; the batches start with it and stop when it shuts down. app.state.phase is "starting",
    "serving" or "stopping" (GET /health reads it; the server sets "stopping" as it begins to stop)."""
    api = _API(served, api_key, max_tokens_cap)
    routes = [Route("/", api.index), Route("/inspect", api.inspect_page), Route("/v1/models", api.models),
              Route("/v1/models/{model:path}", api.model),
              Route("/v1/completions", api.completions, methods=["POST"]),
              Route("/v1/chat/completions", api.chat_completions, methods=["POST"]),
              Route("/v1/suggest", api.suggest, methods=["POST"]),
              Route("/v1/inspect", api.inspect, methods=["POST"]),
              Route("/tokenizer_info", api.tokenizer_info), Route("/tokenize", api.tokenize, methods=["POST"]),
              Route("/detokenize", api.detokenize, methods=["POST"]),
              Route("/health", api.health), Route("/metrics", api.metrics)]
    handlers = {APIError: api_error, HTTPException: http_error, Exception: server_error}
    middleware = [Middleware(AccessLog, routes=routes, metrics=api.stats, log_format=log_format, stream=log_stream)]
    if cors_origins:  # a browser page of another origin may call the API (preflights answered, headers added)
        middleware.append(Middleware(CORS, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type"]))
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=api.lifespan, middleware=middleware)
    app.state.phase = "starting"
    return app


class _API:
    """The routes, over the served runs."""

    def __init__(self, served: dict[str, Served], api_key: str | None, max_tokens_cap: int):
        self.served, self.api_key, self.max_tokens_cap = served, api_key, max_tokens_cap
        self.page, self.inspection_page = page("page.html"), inspect_page()
        self.mailbox: Mailbox | None = None  # the running event loop's, made when the app starts
        self.stats = Metrics({name: lambda b=s.batcher: b.running_rows for name, s in served.items()})

    @asynccontextmanager
    async def lifespan(self, app):
        self.mailbox = Mailbox(asyncio.get_running_loop())
        for target in self.served.values():
            target.batcher.start()
        app.state.phase = "serving"
        try:
            yield
        finally:
            app.state.phase = "stopping"
            for target in self.served.values():
                await asyncio.to_thread(target.batcher.close)

    def authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = self.api_key
        if key and not (scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), key.encode())):
            raise APIError(401, "missing or wrong API key; send the header Authorization: Bearer KEY",
                           code="invalid_api_key")  # with WWW-Authenticate: Bearer (_api_error)

    def find(self, model: str) -> Served:
        """A served run by name: the only way a request reaches a run, so never a path."""
        if model not in self.served:
            raise APIError(404, f"no model {shown(model)} on this server; GET /v1/models lists them",
                           "model", "model_not_found")
        return self.served[model]

    async def index(self, request: Request) -> Response:
        """The writing page: one self-contained HTML file (no CDN, no build step) over this API."""
        return HTMLResponse(self.page)

    async def inspect_page(self, request: Request) -> Response:
        """The inspection page: a text typed into it is read by the run's model (POST /v1/inspect), and its tokens
        coloured by any unit's gates or states, with the gates' saturation and find units."""
        return HTMLResponse(self.inspection_page)

    async def models(self, request: Request) -> Response:
        """The served runs (OpenAI's model list), each with the figures `lstm-textgen info --json` prints."""
        self.authorize(request)
        return JSONResponse({"object": "list", "data": [_model_object(s) for s in self.served.values()]})

    async def model(self, request: Request) -> Response:
        """One served run by name, as /v1/models lists it."""
        self.authorize(request)
        return JSONResponse(_model_object(self.find(request.path_params["model"])))

    async def completions(self, request: Request) -> Response:
        """OpenAI's text completions: a continuation of each prompt, whole or streamed as Server-Sent Events."""
        self.authorize(request)
        started = time.perf_counter()
        completion = protocol.parse_completion(protocol.parse_json(await _read_body(request)), self.max_tokens_cap)
        target = self.find(completion.model)
        return await self._complete(request, started, target, completion, "prompt", [], TEXT)

    async def chat_completions(self, request: Request) -> Response:
        """OpenAI's chat completions for a base model: the messages rendered into one prompt by the run's chat
        template (generate.chat_template), the answer ending where the model starts the next turn."""
        self.authorize(request)
        started = time.perf_counter()
        chat, messages = parse_chat(protocol.parse_json(await _read_body(request)), self.max_tokens_cap)
        target = self.find(chat.model)
        turns = chat_template(target.run.config.generate.chat_template)
        chat.prompts = [turns.render(messages)]
        return await self._complete(request, started, target, chat, "messages", turns.stops, CHAT)

    async def _complete(self, request: Request, started: float, target: Served, completion: protocol.Completion,
                        param: str, turn_ends: list[str], shape) -> Response:
        """The completion's rows into the run's batch; its answer, whole or streamed, in the shape asked for."""
        settings = protocol.completion_settings(completion, target.run.config.generate, self.max_tokens_cap,
                                                target.run.tokenizer.vocab_size)
        stops = settings.stop + [end for end in turn_ends if end not in settings.stop]
        settings = dataclasses.replace(settings, stop=stops)
        prompts = [_encode(target.run, prompt, param) for prompt in completion.prompts]
        rows = [ids for ids, _ in prompts for _ in range(completion.n)]
        echoes = None
        if completion.echo:  # each prompt's tokens, scored as evaluate scores a text when logprobs is asked for
            echoed = [await run_in_threadpool(tools.echo, target.run, target.batcher.stepper, ids, completion.logprobs)
                      for ids, _ in prompts]
            echoes = [echo for echo in echoed for _ in range(completion.n)]
        seed = new_random_seed() if completion.seed is None else completion.seed
        waiter = Waiter(self.mailbox)
        publish = self.stats.timed(target.name, started, waiter.publish)
        job = Job(rows, settings, [seed + i for i in range(len(rows))], publish, completion.logprobs)
        request.state.job, request.state.model = job, target.name  # the access log counts its tokens at the end
        target.batcher.submit(job)
        reply = Reply(job, waiter, target.name, seed, settings.stop, sum(len(ids) for ids, _ in prompts), shape,
                      echoes)
        if completion.stream:
            return StreamingResponse(reply.stream(completion.include_usage), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return await reply.whole(request)

    async def suggest(self, request: Request) -> Response:
        """Our own: the k likeliest next words after a text, with their probabilities (as `suggest --json`)."""
        self.authorize(request)
        name, text, k = protocol.parse_suggest(protocol.parse_json(await _read_body(request)))
        target = self.find(name)
        ids, unknown = _encode(target.run, text, "text")
        if target.run.tokenizer.subword:  # whole words: each candidate completed, as `suggest` does
            options = await run_in_threadpool(tools.word_choices, target.run, text, k)
            return JSONResponse({"model": name, "text": text, "next": options, "unknown_seed_words": unknown})
        waiter = Waiter(self.mailbox)
        probe = Probe(ids, waiter.publish)
        target.batcher.submit(probe)
        try:
            await waiter.next()
        finally:
            probe.cancelled = True
        if probe.error:
            raise APIError(503, probe.error, kind="server_error")
        vocab = target.run.tokenizer.vocab
        options = [{"token": vocab[token_id], "probability": probability,
                    "text": probe.detok.peek(token_id)}  # how generation would write it after the text
                   for token_id, probability in top_ids(probe.probs, k)]
        return JSONResponse({"model": name, "text": text, "next": options, "unknown_seed_words": unknown})

    async def inspect(self, request: Request) -> Response:
        """What `lstm-textgen inspect` records over a text (the gates and states of every unit, the predictions and
        the surprisal), in the inspection page's compact form (page_data in generation/inspect.py)."""
        self.authorize(request)
        name, text, layers, units = tools.parse_inspect(protocol.parse_json(await _read_body(request)))
        target = self.find(name)
        try:
            reading = await run_in_threadpool(inside.inspect, target.run, text, layers, units,
                                              ("text", "layer", "units"), target.batcher.stepper)
        except inside.InspectError as e:
            raise APIError(400, str(e), e.param, "invalid_value") from None
        return JSONResponse(inside.page_data(reading, target.name))

    async def tokenizer_info(self, request: Request) -> Response:
        """The run's tokenizer, as vLLM's GET /tokenizer_info describes one (lm-eval's remote tokenizer reads it);
        ?model=NAME picks the run where several are served. There is no end-of-text or start token."""
        self.authorize(request)
        target = self._one(request.query_params.get("model"))
        return JSONResponse(tools.tokenizer_info(target.name, target.run))

    async def tokenize(self, request: Request) -> Response:
        """vLLM's POST /tokenize: {"prompt": text} -> {"tokens": ids, "count", "max_model_len"}, the ids a
        completion reads for that text (token_strs too, with "return_token_strs": true)."""
        self.authorize(request)
        name, text, strings = tools.parse_tokenize(protocol.parse_json(await _read_body(request)))
        target = self._one(name)
        ids = await run_in_threadpool(encode_text, target.run.tokenizer, text)
        answer = {"count": len(ids), "max_model_len": protocol.MAX_PROMPT_CHARS, "tokens": ids}
        if strings:
            answer["token_strs"] = [target.run.tokenizer.vocab[i] for i in ids]
        return JSONResponse(answer)

    async def detokenize(self, request: Request) -> Response:
        """vLLM's POST /detokenize: {"tokens": ids} -> {"prompt": text}, written as generation writes them."""
        self.authorize(request)
        name, ids = tools.parse_detokenize(protocol.parse_json(await _read_body(request)))
        target = self._one(name)
        tools.check_ids(target.run, ids, "tokens")
        return JSONResponse({"prompt": target.run.tokenizer.decode(ids)})

    def _one(self, model: str | None) -> Served:
        """The run a request names, or the only one served when it names none (vLLM serves one model)."""
        if model is not None:
            return self.find(model)
        if len(self.served) > 1:
            raise APIError(400, f"this server serves {len(self.served)} runs; name one with model (GET /v1/models "
                                "lists them)", "model", "invalid_value")
        return next(iter(self.served.values()))

    async def health(self, request: Request) -> Response:
        """Whether the server is up, without the API key: 200 `{"status": "ok"}` when every run is loaded and its
        batch is running; 503 with `{"status": "starting"}` or `{"status": "stopping"}` otherwise."""
        phase = request.app.state.phase
        if phase == "serving" and all(target.batcher.serving for target in self.served.values()):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting" if phase == "starting" else "stopping"}, status_code=503)

    async def metrics(self, request: Request) -> Response:
        """The server's metrics in Prometheus' text format, without the API key (scrapers seldom send one):
        requests, tokens generated, time to first token, latency and rows in each batch."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(self.stats.registry), media_type=CONTENT_TYPE_LATEST)


def _model_object(target: Served) -> dict:
    return {"id": target.name, "object": "model", "created": target.created, "owned_by": "lstm-textgen",
            "info": target.info}


def _encode(run: Run, prompt: str | list[int], param: str) -> tuple[list[int], list[str]]:
    """A prompt's token ids (a prompt given as ids, checked against the run's vocabulary) and its unknown words."""
    if isinstance(prompt, list):
        tools.check_ids(run, prompt, param)
        return prompt, []
    try:
        return encode_seed(run.tokenizer, prompt, param)
    except TextgenError as e:
        message = f"{param} is empty; send some text to continue" if not prompt.strip() else str(e)
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
