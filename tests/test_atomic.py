"""Atomic writes (renamed into place only when whole, under a name no user file has), the sweep of what a
killed write left, and JSON read back with every failure named."""
import json
import re

import pytest

from lstm_textgen.atomic import PREFIX, read_json, remove_temporaries, replacing, write_text
from lstm_textgen.errors import CheckpointError


def test_a_write_replaces_the_file_only_when_it_is_whole(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(target) as tmp:
            assert tmp.name.startswith(PREFIX + "a.txt.") and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_the_sweep_removes_only_its_own_temporaries(tmp_path):
    ours = [PREFIX + "model.keras.abcd1234.keras", PREFIX + "state.json.x1y2z3w4.tmp"]
    theirs = [".notes.personal.txt", ".model.keras.abcd1234.keras", ".bashrc", "notes.txt",
              PREFIX + "notes.txt.abcd1234.tmp",  # the prefix, but for a name the program does not write there
              PREFIX + "model.keras.abcd1234.keras.bak", PREFIX + "model.keras"]  # not the shape of one
    for name in ours + theirs:
        (tmp_path / name).write_text("x")
    remove_temporaries(tmp_path, lambda name: name in ("model.keras", "state.json"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)


@pytest.mark.parametrize("content, message", [
    (None, "is missing"), ("", "unreadable or damaged (JSONDecodeError)"), ('{"a": ', "unreadable or damaged"),
    ("[1, 2]", "damaged (it holds a list, not an object)"), ("\xff", "unreadable or damaged")])
def test_read_json_names_the_file_and_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    with pytest.raises(CheckpointError, match=re.escape(message)) as caught:
        read_json(path, CheckpointError)
    assert str(path) in str(caught.value)


def test_read_json_names_a_dangling_link(tmp_path):
    (tmp_path / "m.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(CheckpointError, match="is missing \\(a link to a file that is gone\\)"):
        read_json(tmp_path / "m.json", CheckpointError)
    (tmp_path / "gone.json").write_text(json.dumps({"a": 1}))
    assert read_json(tmp_path / "m.json", CheckpointError) == {"a": 1}
