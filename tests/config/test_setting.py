"""A setting declared once: its range (Bounds) says what was missed, range_problems() checks every number field
of a section (nan included), and the declarations carry the help and policies the CLI, HTTP, resume and fine-tune
rules are read from."""
from dataclasses import dataclass

import pytest

from lstm_textgen.config.setting import Bounds, Policy, declared, default_of, policy, range_problems, setting


@pytest.mark.parametrize("bounds, bad, good, message", [
    (Bounds(1), 0, 1, "k must be >= 1, got 0"),
    (Bounds(0.0, low_open=True), 0.0, 1e-9, "k must be > 0, got 0.0"),
    (Bounds(0.0, 1.0, high_open=True), 1.0, 0.0, "k must be in [0, 1), got 1.0"),
    (Bounds(0.0, 1.0, low_open=True), 0.0, 1.0, "k must be in (0, 1], got 0.0"),
    (Bounds(0.0, 1.0, low_open=True, high_open=True), 2.0, 0.5, "k must be between 0 and 1 (exclusive), got 2.0"),
    (Bounds(1, cap=64), 1000, 64, "k must be <= 64, got 1000"),
])
def test_bounds_say_the_range_that_was_missed(bounds, bad, good, message):
    assert bounds.problem("k", bad, optional=False) == message
    assert bounds.problem("k", good, optional=False) is None


def test_an_optional_setting_says_what_null_means():
    bounds = Bounds(0.0, low_open=True, null="for no time limit")
    assert bounds.problem("k", 0.0, optional=True) == "k must be > 0, or null for no time limit, got 0.0"
    assert Bounds(1).problem("k", 0, optional=True) == "k must be >= 1 or null, got 0"


def test_range_problems_check_every_number_field_and_pass_null_and_words():
    from lstm_textgen.config import TrainConfig

    def key(name):
        return f"train.{name}"
    assert range_problems(TrainConfig(batch_size="auto", max_minutes=None), key) == []
    problems = range_problems(TrainConfig(epochs=0, learning_rate=float("inf"), max_minutes=0.0), key)
    assert problems == ["train.epochs must be >= 1, got 0", "train.learning_rate must be a finite number, got inf",
                        "train.max_minutes must be > 0, or null for no time limit, got 0.0"]


def test_a_declared_field_carries_its_default_range_help_and_policies():
    @dataclass
    class Section:
        count: int = setting(3, 1, cap=10, help="how many", resume=True)
        names: list[str] = setting(factory=list, flag="--name", http="names", finetune="own", help="which ones")

    (count, count_type, count_field, count_policy), (names, _, names_field, names_policy) = declared(Section)
    assert (count, count_type, default_of(count_field)) == ("count", int, 3) and Section().names == []
    assert count_field.metadata["bounds"] == Bounds(1, None, cap=10) and "bounds" not in names_field.metadata
    assert count_policy == Policy("how many", resume=True) and policy(Section, "names") == names_policy
    assert (names_policy.flag, names_policy.http, names_policy.finetune, names_policy.resume) == ("--name", "names",
                                                                                                  "own", False)
    assert Section().names is not Section().names  # a fresh list each time
    assert range_problems(Section(count=11), lambda n: n) == ["count must be <= 10, got 11"]
