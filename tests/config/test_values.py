"""Config values: YAML read with a bound on what its aliases expand to, --set KEY=VALUE, typed conversion that
refuses nan and inf, declared ranges, and messages that never echo a whole value."""
import pytest

from lstm_textgen.errors import ConfigError
from lstm_textgen.config.values import MAX_YAML_NODES, convert, parse_override, parse_yaml, read_yaml, shown


def alias_bomb(levels: int) -> str:
    """A few hundred bytes whose aliases stand for 10**levels values."""
    text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


def test_aliases_that_expand_past_the_bound_are_refused_before_they_are_built():
    assert len(alias_bomb(9)) < 1000
    with pytest.raises(ConfigError, match=f"expands to over {MAX_YAML_NODES:,} values through its aliases"):
        parse_yaml(alias_bomb(9), "config file x.yaml")  # a billion values: building them would take all memory
    small = parse_yaml(alias_bomb(3), "config file x.yaml")  # a thousand: fine
    assert len(small["a2"]) == 10 and small["a2"][0] == small["a1"]


def test_a_value_that_contains_itself_is_refused():
    with pytest.raises(ConfigError, match="expands to over"):
        parse_yaml("a: &a [1, *a]\n", "config file x.yaml")


def test_a_file_too_big_for_a_config_is_not_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="too big for a config file"):
        read_yaml(path)


def test_set_values_are_read_as_yaml():
    assert parse_override("model.units=128") == ("model.units", 128)
    assert parse_override("data.corpus=a: [b") == ("data.corpus", "a: [b")  # not YAML: kept as text
    assert parse_override("train.clipnorm=") == ("train.clipnorm", None)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), ".nan", "inf", "1e999", 10**400])
def test_floats_must_be_finite(value):
    with pytest.raises(ValueError):
        convert(value, float)


def test_conversion_by_type():
    assert convert(3, float) == 3.0 and isinstance(convert(3, float), float)
    assert convert("1e-3", float) == 1e-3  # PyYAML reads 1e-3 as a string
    assert convert(4.0, int) == 4
    assert convert(["a", 1], list[str]) == ["a", "1"] and convert("stop", list[str]) == ["stop"]
    for value, tp in ((True, int), (True, float), (1.5, int), ("x", int), (1, bool), (None, int)):
        with pytest.raises(ValueError):
            convert(value, tp)


def test_error_messages_show_at_most_a_few_dozen_characters_of_a_value():
    assert shown("abc") == "'abc'"
    long = shown("x" * 10_000)
    assert len(long) < 80 and long.endswith("...")


def test_parse_override_keeps_non_yaml_text():
    assert parse_override("data.corpus=[oops") == ("data.corpus", "[oops")
