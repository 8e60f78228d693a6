"""Quality rules as data: load ``rules.yaml`` (or a user file), validate it, apply overrides.

A bad rules file fails with the file, the rule and the field to fix, before any data is read.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from corpus.quality.metrics import ALL_METRICS

DEFAULT_RULES_PATH = os.path.join(os.path.dirname(__file__), "rules.yaml")
_BOUND_KEYS = {"above", "below", "is"}


class RulesError(ValueError):
    """An invalid rules file or override; the message names the file, rule and field."""


@dataclass(frozen=True)
class Bounds:
    """Drop when ``value > above`` or ``value < below``; ``is_true`` drops flags equal to 1."""

    above: float | None = None
    below: float | None = None
    is_true: bool = False

    @classmethod
    def parse(cls, raw: Any, where: str) -> Bounds:
        if not isinstance(raw, Mapping) or not raw:
            raise RulesError(f"{where}: drop_if must be a mapping like {{above: 1000}} or {{is: true}}, got {raw!r}")
        unknown = set(raw) - _BOUND_KEYS
        if unknown:
            raise RulesError(f"{where}: unknown drop_if key(s) {sorted(unknown)}; use above, below or is")
        if "is" in raw:
            if raw["is"] is not True or len(raw) > 1:
                raise RulesError(f"{where}: flags take exactly {{is: true}}, got {dict(raw)!r}")
            return cls(is_true=True)
        vals = {}
        for k in ("above", "below"):
            if k in raw:
                v = raw[k]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
                    raise RulesError(f"{where}: drop_if.{k} must be a number, got {v!r}")
                vals[k] = float(v)
        if "above" in vals and "below" in vals and vals["below"] > vals["above"]:
            raise RulesError(f"{where}: drop_if.below ({vals['below']}) is greater than drop_if.above ({vals['above']})")
        return cls(**vals)

    def describe(self) -> str:
        if self.is_true:
            return "is true"
        parts = []
        if self.below is not None:
            parts.append(f"< {self.below:g}")
        if self.above is not None:
            parts.append(f"> {self.above:g}")
        return " or ".join(parts)


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    drop_if: Bounds
    languages: tuple[str, ...] | None  # None = every language
    exclude: tuple[str, ...] = ()
    per_language: dict[str, Bounds] = field(default_factory=dict)
    min_chars: int = 0
    source: str = ""

    def applies_to(self, language: str) -> bool:
        lang = language.lower()
        if lang in self.exclude:
            return False
        return self.languages is None or lang in self.languages

    def bounds_for(self, language: str) -> Bounds:
        return self.per_language.get(language.lower(), self.drop_if)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    path: str
    sha256: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    disabled: tuple[str, ...] = ()

    def for_language(self, language: str) -> list[Rule]:
        return [r for r in self.rules if r.applies_to(language)]

    @property
    def fingerprint(self) -> dict[str, Any]:
        """What the filter result depends on: put it in the stage config hash."""
        return {
            "rules_sha256": self.sha256,
            "overrides": {k: dict(v) for k, v in sorted(self.overrides.items())},
            "disabled": sorted(self.disabled),
        }


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise RulesError(f"{where}: each rule must be a mapping, got {type(raw).__name__}")
    for key in ("name", "metric", "drop_if"):
        if key not in raw:
            raise RulesError(f"{where}: rule lacks required field {key!r}")
    name = str(raw["name"])
    where = f"{where} (rule {name!r})"
    metric = raw["metric"]
    if metric not in ALL_METRICS:
        raise RulesError(f"{where}: unknown metric {metric!r}; known: {sorted(ALL_METRICS)}")
    langs = raw.get("languages", "*")
    if langs == "*" or langs is None:
        languages = None
    elif isinstance(langs, (list, tuple)) and all(isinstance(x, str) for x in langs):
        languages = tuple(x.lower() for x in langs)
    else:
        raise RulesError(f"{where}: languages must be \"*\" or a list of names, got {langs!r}")
    per = raw.get("per_language") or {}
    if not isinstance(per, Mapping):
        raise RulesError(f"{where}: per_language must map language -> {{above/below: x}}")
    min_chars = raw.get("min_chars", 0)
    if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 0:
        raise RulesError(f"{where}: min_chars must be a non-negative integer, got {min_chars!r}")
    unknown = set(raw) - {"name", "metric", "drop_if", "languages", "exclude", "per_language", "min_chars", "source"}
    if unknown:
        raise RulesError(f"{where}: unknown field(s) {sorted(unknown)}")
    return Rule(
        name=name,
        metric=metric,
        drop_if=Bounds.parse(raw["drop_if"], f"{where} drop_if"),
        languages=languages,
        exclude=tuple(x.lower() for x in raw.get("exclude") or ()),
        per_language={str(k).lower(): Bounds.parse(v, f"{where} per_language.{k}") for k, v in per.items()},
        min_chars=min_chars,
        source=str(raw.get("source", "")),
    )


def load_rules(
    path: str | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    disabled: Iterable[str] = (),
) -> RuleSet:
    """Rules from ``path`` (default: the bundled rules.yaml) with threshold ``overrides``
    (``{rule: {above: x, below: y}}`` or ``{rule: {is: true}}``) and ``disabled`` rule names."""
    path = path or DEFAULT_RULES_PATH
    try:
        with open(path, "rb") as fh:
            blob = fh.read()
    except OSError as exc:
        raise RulesError(f"rules file {path}: cannot read ({exc})") from exc
    try:
        doc = yaml.safe_load(blob)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules file {path}: invalid YAML ({exc})") from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rules"), list):
        raise RulesError(f"rules file {path}: expected a mapping with a 'rules' list")
    rules = [_rule(r, f"{path}: rules[{i}]") for i, r in enumerate(doc["rules"])]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise RulesError(f"rules file {path}: duplicate rule name(s) {dupes}")
    overrides = {str(k): dict(v) for k, v in (overrides or {}).items()}
    disabled = tuple(sorted(set(disabled)))
    for n in list(overrides) + list(disabled):
        if n not in names:
            raise RulesError(f"override/disable of unknown rule {n!r}; rules in {path}: {names}")
    out = []
    for r in rules:
        if r.name in disabled:
            continue
        if r.name in overrides:
            r = replace(r, drop_if=Bounds.parse(overrides[r.name], f"override for rule {r.name!r}"), per_language={})
        out.append(r)
    return RuleSet(tuple(out), path, hashlib.sha256(blob).hexdigest(), overrides, disabled)


def parse_set_option(items: Iterable[str]) -> dict[str, dict[str, Any]]:
    """CLI ``--set rule.above=2000`` / ``rule.below=0.3`` / ``rule.is=true`` into overrides."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        try:
            key, value = item.split("=", 1)
            rule, bound = key.rsplit(".", 1)
        except ValueError as exc:
            raise RulesError(f"--set {item!r}: expected RULE.above=X, RULE.below=X or RULE.is=true") from exc
        if bound == "is":
            val: Any = value.strip().lower() in {"1", "true", "yes"}
        else:
            try:
                val = float(value)
            except ValueError as exc:
                raise RulesError(f"--set {item!r}: {value!r} is not a number") from exc
        out.setdefault(rule, {})[bound] = val
    return out
