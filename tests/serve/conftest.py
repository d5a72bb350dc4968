"""The server most serve tests call: the tiny run on a free localhost port (max_tokens up to 100,000), one per test
module, and an httpx client to it. A module that needs other options starts its own."""
import httpx
import pytest

from helpers import running_server


@pytest.fixture(scope="module")
def server(tiny_run):
    with running_server([tiny_run], max_tokens_cap=100_000) as (url, served):
        yield url, served["run"]


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server[0], timeout=30) as client:
        yield client
