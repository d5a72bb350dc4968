"""TensorFlow's start-up chatter kept off the terminal, its real warnings kept on it.

TensorFlow's C++ code logs to file descriptor 2 as it loads, before any setting of ours can reach it
(TF_CPP_MIN_LOG_LEVEL no longer covers these lines): that oneDNN is on, that this CPU could use more
instructions, that no CUDA driver was found, a cuInit "error" on a machine without a GPU. The command line
puts a pipe on descriptor 2 before TensorFlow is imported and forwards every line but those to the real
stderr, which Python's own sys.stderr keeps writing to directly (so it is still a terminal for the bars).
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = re.compile(
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|oneDNN custom operations are on"
    r"|Could not find cuda drivers on your machine"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|failed call to cuInit"
    r"|oneDNN supports DT_\w+ only on platforms with AVX-512"
    r"|Unable to register cu(FFT|DNN|BLAS) factory"
    r"|computation placer already registered"
    r"|Ignored (output_format|drop_control_dependency)"  # the TFLite converter's (export --format tflite)
    r"|^INFO: Created TensorFlow Lite XNNPACK delegate for CPU")  # LiteRT's, opening a model
_installed: list = []


def quiet_tensorflow() -> None:
    """Filter descriptor 2 for the rest of the process (once; not when sys.stderr is not descriptor 2, as in
    a test's captured output, and not when LSTM_TEXTGEN_TF_LOGS is set, to see everything)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # what the setting still silences
    if _installed or os.environ.get("LSTM_TEXTGEN_TF_LOGS") or "tensorflow" in sys.modules:
        return
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stderr.flush()
    real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(real, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace",
                      closefd=False)
    forwarder = threading.Thread(target=_forward, args=(read, real), daemon=True, name="tensorflow-log-filter")
    forwarder.start()
    _installed.append((real, forwarder))
    atexit.register(_drain)


def _forward(read: int, real: int) -> None:
    """Copy lines from the pipe to the real stderr, dropping the start-up chatter."""
    with open(read, "rb", buffering=0) as pipe:
        pending = b""
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NOISE.search(line.decode(errors="replace")))
            if kept:
                os.write(real, kept)
        if pending and not NOISE.search(pending.decode(errors="replace")):
            os.write(real, pending)


def _drain() -> None:
    """At exit: close the pipe's writing end so the forwarder copies what is left, and wait for it."""
    real, forwarder = _installed[0]
    os.dup2(real, 2)  # the last writer of the pipe goes: the forwarder reads to its end
    forwarder.join(timeout=2.0)
