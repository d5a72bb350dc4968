"""Loading the served runs and binding the port: one-line errors for what a person can get wrong."""
from __future__ import annotations

import shutil
import socket

import pytest

from lstm_textgen.errors import TextgenError
from lstm_textgen.serve.server import bind, load_served


def test_runs_are_named_by_their_folder(tiny_run, tmp_path):
    other = shutil.copytree(tiny_run, tmp_path / "letters")
    served = load_served([str(tiny_run), str(other)])
    assert list(served) == ["run", "letters"]
    assert served["letters"].info["vocab_size"] == served["letters"].run.tokenizer.vocab_size
    assert served["letters"].batcher.running_rows == 0  # made, not started: the app starts it


def test_two_runs_of_one_name_are_refused(tiny_run, tmp_path):
    twin = shutil.copytree(tiny_run, tmp_path / "elsewhere" / "run")
    with pytest.raises(TextgenError, match=r"two runs are named 'run' .* copy one to a folder of another name"):
        load_served([str(tiny_run), str(twin)])


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(TextgenError, match="nothing"):
        load_served([str(tmp_path / "nothing")])


def test_a_port_in_use_says_so():
    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        taken.listen()
        with pytest.raises(TextgenError, match=f"cannot listen on 127.0.0.1:{port}: .*; choose another with --port"):
            bind("127.0.0.1", port)
    finally:
        taken.close()


def test_a_host_that_is_not_this_machines_is_refused():
    with pytest.raises(TextgenError, match="cannot listen"):
        bind("192.0.2.1", 0)  # TEST-NET-1: never an address of this machine


def test_a_free_port_is_picked_for_port_0():
    sock = bind("127.0.0.1", 0)
    assert sock.family == socket.AF_INET and sock.getsockname()[1] > 0
    sock.close()


def test_every_connection_accepted_sends_at_once():
    """A connection accepted on the listening socket has TCP_NODELAY: an answer written in two parts (head, then
    body) is not held back for the client's delayed ACK, which cost 40 ms per request on a kept-alive connection."""
    listening = bind("127.0.0.1", 0)
    listening.listen()
    try:
        with socket.create_connection(listening.getsockname()) as client:
            accepted, _ = listening.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0  # not the default
    finally:
        listening.close()
