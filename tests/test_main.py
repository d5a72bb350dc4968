"""`python -m lstm_textgen` is the command line: the same program as the lstm-textgen script, exit codes included."""
import subprocess
import sys

from lstm_textgen import __version__


def test_python_dash_m_runs_the_command_line():
    version = subprocess.run([sys.executable, "-m", "lstm_textgen", "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"lstm-textgen, version {__version__}"
    unknown = subprocess.run([sys.executable, "-m", "lstm_textgen", "trian"], capture_output=True, text=True,
                             timeout=60)
    assert unknown.returncode == 2 and "No such command 'trian'" in unknown.stderr
