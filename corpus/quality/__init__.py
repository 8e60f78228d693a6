"""Rule-based quality filters for code files (StarCoder / RedPajama / Qwen2.5-Coder filters as data).

```python
from corpus.quality import QualityFilter, load_rules
f = QualityFilter(load_rules(overrides={"max_line_length": {"above": 2000}}))
stats = f.filter_shard_set(in_path, out_path, dropped_path, language="python")
```
Rules live in ``corpus/quality/rules.yaml`` (each with its source); see docs/quality.md.
"""

from corpus.quality.filter import DROPPED_SCHEMA, EMPTY_RULE, QualityFilter, QualityInputError, QualityStats
from corpus.quality.rules import (
    DEFAULT_RULES_PATH,
    Bounds,
    Rule,
    RulesError,
    RuleSet,
    load_rules,
    parse_set_option,
)

__all__ = [
    "DEFAULT_RULES_PATH",
    "DROPPED_SCHEMA",
    "EMPTY_RULE",
    "Bounds",
    "QualityFilter",
    "QualityInputError",
    "QualityStats",
    "Rule",
    "RuleSet",
    "RulesError",
    "load_rules",
    "parse_set_option",
]
