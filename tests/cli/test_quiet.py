"""TensorFlow's start-up chatter is filtered off descriptor 2; anything else written there passes."""
import subprocess
import sys

from lstm_textgen.cli.quiet import NOISE

CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796164527.238362    7415 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders.",
    "I0000 00:00:1796164527.238680    7415 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796165394.386073   23186 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796164875.157315   13480 util.cc:131] oneDNN supports DT_BOOL only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
]
REAL = ["W0000 00:00:1796164875.1 12 gpu_device.cc:2344] Cannot dlopen some GPU libraries.",
        "Error: something the user must see", "warning: model.recurrent_dropout=0.1 keeps Keras off cuDNN"]


def test_the_filter_drops_the_chatter_and_keeps_the_rest():
    assert all(NOISE.search(line) for line in CHATTER)
    assert not any(NOISE.search(line) for line in REAL)


def test_a_process_that_installs_it_keeps_its_own_stderr_and_the_real_lines():
    code = ("import os, sys\n"
            "from lstm_textgen.cli.quiet import quiet_tensorflow\n"
            "quiet_tensorflow()\n"
            f"os.write(2, {(chr(10).join(CHATTER + REAL) + chr(10)).encode()!r})\n"
            "print('from python', file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert sorted(lines) == sorted(REAL + ["from python"])
