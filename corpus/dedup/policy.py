"""Which row of a duplicate cluster is kept: an ordered list of criteria (BigCode's recipe).

Default: permissive license first, then more stars, more forks, newer revision date, then the
smallest id (so the choice never depends on input order). Missing columns and nulls rank last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_KEEP_POLICY = ("license", "stars", "forks", "revision_date", "id")

# SPDX ids treated as permissive (The Stack's allow-list family).
PERMISSIVE_LICENSES = frozenset(
    {
        "MIT", "MIT-0", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSD-3-Clause-Clear", "0BSD",
        "ISC", "Unlicense", "Zlib", "BSL-1.0", "CC0-1.0", "PSF-2.0", "Python-2.0", "X11",
        "PostgreSQL", "NCSA", "UPL-1.0", "WTFPL", "Artistic-2.0", "HPND", "MPL-2.0",
    }
)

# criterion -> (column in the per-document table, SQL ordering: best first)
_CRITERIA = {
    "license": ("permissive", "permissive DESC"),
    "stars": ("stars", "stars DESC NULLS LAST"),
    "forks": ("forks", "forks DESC NULLS LAST"),
    "revision_date": ("revision_date", "revision_date DESC NULLS LAST"),
    "id": ("id", "id ASC"),
}
POLICY_COLUMNS = ("license", "stars", "forks", "revision_date")


def validate_policy(policy: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in policy if c not in _CRITERIA]
    if unknown:
        raise ValueError(f"keep_policy: unknown criteria {unknown}; choose from {sorted(_CRITERIA)}")
    if len(set(policy)) != len(policy):
        raise ValueError(f"keep_policy: criteria repeat in {list(policy)}")
    return tuple(policy)


def order_by_sql(policy: Sequence[str]) -> str:
    """ORDER BY clause ranking a cluster's rows best-first; input position breaks the last ties."""
    return ", ".join([_CRITERIA[c][1] for c in validate_policy(policy)] + ["doc ASC"])


def is_permissive(spdx: str | None, allowed: Iterable[str] = PERMISSIVE_LICENSES) -> bool:
    """True if the SPDX expression can be used under permissive terms.

    ``A OR B``: any alternative permissive; ``A AND B``: every part permissive; WITH exceptions
    keep the base license's class.
    """
    if not spdx:
        return False
    allowed = set(allowed)
    expr = spdx.replace("(", " ").replace(")", " ")
    for alt in expr.split(" OR "):
        parts = [p.split(" WITH ")[0].strip() for p in alt.split(" AND ")]
        if parts and all(p in allowed for p in parts):
            return True
    return False
