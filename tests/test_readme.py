"""README.md: short, every link it makes lands on a file of the repository, and it points nowhere outside it."""
import re
from pathlib import Path

from lstm_textgen.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def test_readme_reads_in_five_minutes():
    assert len(README.splitlines()) <= 250


def test_every_link_in_the_readme_lands_on_a_file_of_the_repository():
    targets = [target for target in re.findall(r"\]\(([^)\s]+)\)", README) if not target.startswith("http")]
    assert len(targets) > 20
    missing = [target for target in targets if not (REPO / target.split("#")[0]).is_file()]
    assert missing == []


def test_the_readme_points_at_nothing_outside_the_repository():
    assert "../" not in README and "shared/data" not in README


def test_every_command_the_readme_shows_exists():
    code = [line.split("#")[0] for line in README.splitlines() if line.startswith("    ")]
    code += re.findall(r"`([^`\n]+)`", README)
    used = {word for line in code for word in re.findall(r"lstm-textgen (\w+)", line)}
    assert {"train", "generate", "evaluate", "serve", "suggest", "info", "runs", "plot"} <= used
    assert used <= set(cli.commands)
