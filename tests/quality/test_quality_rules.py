"""The rules file: defaults with sources, overrides, and clear errors for bad rule files."""

from __future__ import annotations

import pytest

from corpus.quality import DEFAULT_RULES_PATH, RulesError, load_rules, parse_set_option
from corpus.quality.metrics import ALL_METRICS


def test_default_rules_cover_the_published_filters_and_cite_sources():
    rs = load_rules()
    names = {r.name for r in rs.rules}
    assert {"max_line_length", "mean_line_length", "alphanumeric_fraction", "alphabetic_fraction",
            "auto_generated", "encoded_data_fraction", "encoded_data_run", "xml_header", "html_visible_fraction",
            "html_visible_chars", "comment_ratio", "line_count", "chars_per_token", "python_syntax",
            "data_like"} <= names
    for r in rs.rules:
        assert r.metric in ALL_METRICS
        assert len(r.source) > 20, f"rule {r.name} must cite where its default comes from"
    by = {r.name: r for r in rs.rules}
    assert by["max_line_length"].drop_if.above == 1000
    assert by["mean_line_length"].drop_if.above == 100
    assert (by["line_count"].drop_if.below, by["line_count"].drop_if.above) == (5, 20000)
    assert (by["comment_ratio"].drop_if.below, by["comment_ratio"].drop_if.above) == (0.01, 0.85)
    assert by["chars_per_token"].bounds_for("python").below < by["chars_per_token"].bounds_for("java").below
    assert not by["python_syntax"].applies_to("java") and by["python_syntax"].applies_to("python")
    assert not by["xml_header"].applies_to("xslt") and by["xml_header"].applies_to("go")
    assert by["html_visible_chars"].applies_to("html") and not by["html_visible_chars"].applies_to("python")


def test_overrides_and_disabled_change_the_fingerprint():
    base = load_rules()
    over = load_rules(overrides={"max_line_length": {"above": 2000}}, disabled=["comment_ratio"])
    by = {r.name: r for r in over.rules}
    assert by["max_line_length"].drop_if.above == 2000
    assert "comment_ratio" not in by
    assert base.fingerprint != over.fingerprint
    assert load_rules().fingerprint == base.fingerprint


def test_rules_file_content_is_in_the_fingerprint(tmp_path):
    text = open(DEFAULT_RULES_PATH).read()
    a = tmp_path / "a.yaml"
    a.write_text(text)
    b = tmp_path / "b.yaml"
    b.write_text(text.replace("drop_if: {above: 1000}", "drop_if: {above: 1500}"))
    ra, rb = load_rules(str(a)), load_rules(str(b))
    assert ra.fingerprint == load_rules().fingerprint  # same bytes, same hash, wherever the file lives
    assert ra.fingerprint != rb.fingerprint
    assert {r.name: r for r in rb.rules}["max_line_length"].drop_if.above == 1500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("rules: [", "invalid YAML"),
        ("version: 1\n", "expected a mapping with a 'rules' list"),
        ("rules:\n  - {name: a, metric: nope, drop_if: {above: 1}}\n", "unknown metric 'nope'"),
        ("rules:\n  - {name: a, metric: line_count}\n", "lacks required field 'drop_if'"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {above: x}}\n", "drop_if.above must be a number"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {over: 3}}\n", "unknown drop_if key"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {below: 9, above: 3}}\n", "greater than"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {above: 1}}\n"
         "  - {name: a, metric: line_count, drop_if: {above: 2}}\n", "duplicate rule name"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {above: 1}, languages: python}\n", "languages must be"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {above: 1}, min_chars: -1}\n", "min_chars"),
        ("rules:\n  - {name: a, metric: line_count, drop_if: {above: 1}, colour: red}\n", "unknown field"),
    ],
)
def test_bad_rules_files_fail_with_file_rule_and_field(tmp_path, body, message):
    p = tmp_path / "rules.yaml"
    p.write_text(body)
    with pytest.raises(RulesError, match=message) as exc:
        load_rules(str(p))
    assert str(p) in str(exc.value)


def test_bad_overrides_and_cli_set_syntax(tmp_path):
    with pytest.raises(RulesError, match="unknown rule 'no_such_rule'"):
        load_rules(overrides={"no_such_rule": {"above": 1}})
    with pytest.raises(RulesError, match="unknown rule 'nope'"):
        load_rules(disabled=["nope"])
    with pytest.raises(RulesError, match="must be a number"):
        load_rules(overrides={"max_line_length": {"above": "big"}})
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(str(tmp_path / "missing.yaml"))
    assert parse_set_option(["max_line_length.above=2000", "line_count.below=3"]) == {
        "max_line_length": {"above": 2000.0}, "line_count": {"below": 3.0}}
    with pytest.raises(RulesError, match="expected RULE.above=X"):
        parse_set_option(["max_line_length"])
    with pytest.raises(RulesError, match="not a number"):
        parse_set_option(["max_line_length.above=lots"])


def test_comment_rule_languages_all_have_comment_syntax():
    from corpus.quality.metrics import COMMENT_RE

    rule = {r.name: r for r in load_rules().rules}["comment_ratio"]
    assert rule.languages is not None and set(rule.languages) <= set(COMMENT_RE)
