"""Loss-curve plots (PNG bytes) for asset metadata and the CLI; matplotlib's Agg backend only."""

from __future__ import annotations

import io
from typing import Any


def plot_curves(history: list[dict[str, Any]], keys: tuple[str, ...], title: str,
                reference: dict[str, float] | None = None) -> bytes:
    """PNG of ``keys`` over steps, with optional horizontal reference lines (e.g. unigram entropy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    steps = [h["step"] for h in history]
    for k in keys:
        pts = [(s, h[k]) for s, h in zip(steps, history) if h.get(k) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker="o" if len(pts) < 20 else None)
    for name, y in (reference or {}).items():
        ax.axhline(y, linestyle="--", color="gray", label=name)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
