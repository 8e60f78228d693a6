"""Pre-training mixture: per-source token budgets (code : text : math = 70 : 20 : 10) and
seeded up/down-sampling. See :mod:`corpus.mix.mixer` for the output row contract."""

from corpus.mix.budget import SOURCES, Shares, effective_shares, plan_budget, proxy_tokens, proxy_tokens_str
from corpus.mix.mixer import MIX_SCHEMA, MixInput, MixReport, discover_inputs, plan_and_write

__all__ = [
    "MIX_SCHEMA", "SOURCES", "MixInput", "MixReport", "Shares", "discover_inputs", "effective_shares",
    "plan_and_write", "plan_budget", "proxy_tokens", "proxy_tokens_str",
]
