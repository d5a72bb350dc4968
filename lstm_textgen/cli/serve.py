"""lstm-textgen serve: runs behind an OpenAI-style HTTP API and a writing page."""
from __future__ import annotations

import click

from lstm_textgen.cli.base import cli, user_errors
from lstm_textgen.serve.protocol import DEFAULT_MAX_TOKENS_CAP

API_KEY_ENV = "LSTM_TEXTGEN_API_KEY"


@cli.command(short_help="Serve runs over an OpenAI-style HTTP API and a writing page.")
@click.option("run_dirs", "--run", "-r", multiple=True, required=True, metavar="DIR",
              help="Run directory to serve (repeatable); the API calls it by its folder name.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (the default is reachable from this machine only).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--api-key", envvar=API_KEY_ENV, metavar="KEY",
              help=f"Require 'Authorization: Bearer KEY' on every API call (or set {API_KEY_ENV}).")
@click.option("--max-tokens-cap", type=click.IntRange(1, 100_000), default=DEFAULT_MAX_TOKENS_CAP, show_default=True,
              help="The largest max_tokens a request may ask for; larger ones are refused.")
@click.option("cors_origins", "--cors-origin", multiple=True, metavar="ORIGIN",
              help="Let browser pages from ORIGIN (scheme://host[:port], or *) call the API (repeatable; none by "
                   "default).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="The access log on stderr: one line per request, as text or one JSON object.")
def serve(run_dirs, host, port, api_key, max_tokens_cap, cors_origins, log_format):
    """Serve runs over HTTP: POST /v1/completions (OpenAI-style, streamed with "stream": true), GET /v1/models,
    POST /v1/suggest (the likeliest next words), a writing page at /, GET /health and GET /metrics (Prometheus).
    Ctrl-C or SIGTERM stops it."""
    from lstm_textgen.serve.operations import check_origin
    from lstm_textgen.serve.server import Server, bind, load_served

    if api_key is not None and (not api_key.strip() or any(ch.isspace() or not ch.isprintable() for ch in api_key)):
        problem = "is empty" if not api_key.strip() else "holds spaces or control characters"
        raise click.BadParameter(f"the key {problem}, which no client can send as a Bearer token (and an empty key "
                                 f"would leave the API open); give a key of letters, digits and marks, or leave "
                                 f"--api-key out and unset {API_KEY_ENV} to serve without one", param_hint="--api-key")
    with user_errors():
        origins = [check_origin(origin) for origin in cors_origins]
        served = load_served(list(run_dirs))
        sock = bind(host, port)

        def ready(url: str) -> None:
            click.echo(f"serving {', '.join(served)} on {url} (the writing page is {url}/; Ctrl-C stops)", err=True)
            if api_key is None and host not in ("127.0.0.1", "localhost", "::1"):
                click.echo(f"warning: {host} may be reachable from other machines and no --api-key is set", err=True)

        Server(served, api_key, max_tokens_cap, ready, origins, log_format).serve_on(sock)
    click.echo("stopped", err=True)
