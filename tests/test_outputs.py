"""Files written outside a run folder never replace a person's file: every command that writes x {an existing file
of the person's at the target, a folder at the target, a target under a file} is refused in one `Error:` line with
nothing changed; a file lstm-textgen wrote (it carries the program's stamp) is replaced, and --force replaces any."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_textgen.cli import cli
from lstm_textgen.outputs import FORMATS, check_target, written_here

from conftest import PNG_SIGNATURE, TINY_SETTINGS, TINY_TEXT
from helpers import check_one_error, snapshot

TINY = [a for s in TINY_SETTINGS for a in ("--set", s)]


class World:
    """Two finished runs, a corpus, and the targets: out.png, ./curves.png, new_run/; `blocker` is a file."""

    def __init__(self, root: Path, trained: Path):
        self.root = root
        self.a, self.b = root / "runs" / "a", root / "runs" / "b"
        for run in (self.a, self.b):
            shutil.copytree(trained, run)
        self.corpus = root / "letters.txt"
        self.corpus.write_text(TINY_TEXT)
        self.blocker = root / "blocker.txt"
        self.blocker.write_text("a file of the person's")


WRITERS = {  # command -> (its target, the command line that writes it)
    "plot -o FILE": (lambda w: w.root / "out.png", lambda w, t: ["plot", "--run", w.a, "-o", t]),
    "plot of several runs (curves.png here)": (lambda w: w.root / "curves.png", lambda w, t: ["plot", w.a, w.b]),
    "plot of one run (RUN/curves.png)": (lambda w: w.a / "curves.png", lambda w, t: ["plot", "--run", w.a]),
    "train --run DIR": (lambda w: w.root / "new_run", lambda w, t: ["train", w.corpus, "--run", t, *TINY]),
    "train --from RUN --run DIR": (lambda w: w.root / "tuned",
                                   lambda w, t: ["train", w.corpus, "--from", w.a, "--run", t, *TINY]),
}


def users_file(target: Path) -> Path:
    target.unlink(missing_ok=True)  # a run's own curves.png is the program's: not this case (see below)
    target.write_bytes(PNG_SIGNATURE + b"a person's own picture")
    return target


def users_folder(target: Path) -> Path:
    if target.is_file():
        target.unlink()
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    return target


TARGETS = {
    "an existing file of the person's": (users_file, ("exists and lstm-textgen did not write it", "is a file")),
    "a folder at the target": (users_folder, ("is a folder", "is not an lstm-textgen run directory")),
    "a target under a file": (lambda t: None, ("is a file, not a folder", "cannot write to run directory")),
}
# The one run's curves.png is its own file (redrawn after every epoch); a person's file put there is not protected
CASES = [(writer, target) for writer in WRITERS for target in TARGETS
         if not (writer == "plot of one run (RUN/curves.png)" and target != "a folder at the target")
         and not (writer.startswith("plot of") and target == "a target under a file")]  # cwd / a run: never under a file


@pytest.mark.parametrize("writer, where", CASES, ids=[f"{w}: {t}" for w, t in CASES])
def test_an_output_never_replaces_what_the_person_has_there(tmp_path, tiny_run, writer, where):
    world = World(tmp_path, tiny_run)
    target_of, command = WRITERS[writer]
    target = target_of(world)
    make, says = TARGETS[where]
    if where == "a target under a file":
        target = world.blocker / target.name
    else:
        make(target)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(cli, [str(a) for a in command(world, target)])
    check_one_error(result, "")
    assert any(phrase in result.output for phrase in says), result.output
    assert snapshot(tmp_path) == before


def test_the_table_covers_every_writer_and_target():
    assert {writer for writer, _ in CASES} == set(WRITERS) and {where for _, where in CASES} == set(TARGETS)


@pytest.mark.parametrize("suffix", [".png", ".svg", ".pdf"])
def test_a_figure_the_program_wrote_is_replaced_and_force_replaces_any(tmp_path, tiny_run, suffix):
    world = World(tmp_path, tiny_run)
    out = tmp_path / f"figure{suffix}"
    first = CliRunner().invoke(cli, ["plot", "--run", str(world.a), "-o", str(out)], catch_exceptions=False)
    assert first.exit_code == 0 and written_here(out)
    out.write_bytes(out.read_bytes().replace(b"runs/a", b"runs/x"))  # still stamped: the program's
    again = CliRunner().invoke(cli, ["plot", str(world.a), str(world.b), "-o", str(out)], catch_exceptions=False)
    assert again.exit_code == 0 and written_here(out)
    out.write_bytes(b"the person's own " + suffix.encode())
    refused = CliRunner().invoke(cli, ["plot", "--run", str(world.a), "-o", str(out)])
    check_one_error(refused, "pass --force to replace it")
    forced = CliRunner().invoke(cli, ["plot", "--run", str(world.a), "-o", str(out), "--force"],
                                catch_exceptions=False)
    assert forced.exit_code == 0 and written_here(out)


def test_the_default_curves_png_here_is_the_programs_to_redraw(tmp_path, tiny_run, monkeypatch):
    world = World(tmp_path, tiny_run)
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = CliRunner().invoke(cli, ["plot", str(world.a), str(world.b)], catch_exceptions=False)
        assert result.exit_code == 0 and written_here(tmp_path / "curves.png")


def test_the_stamp_is_read_from_each_formats_metadata_only(tmp_path):
    assert set(FORMATS) == {".png", ".svg", ".pdf", ".html"}
    (tmp_path / "a.png").write_bytes(PNG_SIGNATURE + b"\0\0\0\rIHDR" + b"\0" * 20)
    (tmp_path / "b.svg").write_text("<svg><!-- lstm-textgen 0.1.0 --></svg>")  # the words, not the stamp
    (tmp_path / "c.txt").write_text("lstm-textgen 0.1.0")
    (tmp_path / "d.png").symlink_to(tmp_path / "a.png")
    assert not any(written_here(tmp_path / name) for name in ("a.png", "b.svg", "c.txt", "d.png", "none.png"))
    with pytest.raises(Exception, match="exists and lstm-textgen did not write it"):
        check_target(tmp_path / "d.png", force=False)  # a link is the person's, whatever it points at
    check_target(tmp_path / "d.png", force=True)
    check_target(tmp_path / "new.png", force=False)
