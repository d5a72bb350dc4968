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


def test_the_version_is_written_in_one_place_and_the_changelog_has_it():
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "lstm_textgen.__version__"}
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{__version__}]")
