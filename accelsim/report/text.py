"""Figures as text, shared by the console table and report.md."""

from __future__ import annotations

from typing import Any


def accuracy_text(run: dict[str, Any]) -> str:
    """``97.9 ± 0.8 %`` (mean ± sample std over the seeds that finished), with diverged seeds."""
    per_seed = run["accuracy_per_seed"] or []
    diverged = sum(a is None for a in per_seed)
    if run["accuracy"] is None:
        return f"diverged ({diverged}/{len(per_seed)} seeds)" if diverged else "n/a"
    text = f"{run['accuracy'] * 100:.1f}"
    if run["accuracy_std"] is not None:
        text += f" ± {run['accuracy_std'] * 100:.1f}"
    text += " %"
    if diverged:
        text += f" ({diverged} of {len(per_seed)} seeds diverged)"
    return text


def delta_text(summary: dict[str, Any]) -> str:
    """The accuracy difference policy − baseline, mean ± std of the paired per-seed differences."""
    delta, std = summary["accuracy_delta"], summary.get("accuracy_delta_std")
    if delta is None:
        return "n/a"
    return f"{delta * 100:+.2f}" + (f" ± {std * 100:.2f}" if std is not None else "") + " pt"
