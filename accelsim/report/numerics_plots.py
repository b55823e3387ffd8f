"""Plots of a trained run, from ``training.csv`` and ``numerics.npz`` in the run folder:
accuracy and loss curves of both precisions (mean and spread over seeds) and PACT's clip values, the
gradient histogram with the linear INT4 and the radix-4 FP4 grids drawn over it, and one input image
as each run's first layer reads it (when one of them reads it in 4 bits)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure

from accelsim.numerics.quant import fp4r4_levels, fp4r4_scale_for

COLORS = {"policy": "tab:blue", "baseline": "tab:orange"}


def plots_from_folder(run_dir: Path, summary: dict) -> list[tuple[str, Callable[[Path], bool]]]:
    with open(run_dir / "training.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    plots: list[tuple[str, Callable[[Path], bool]]] = [("training_curves.png", lambda p: _curves(rows, summary, p))]
    npz = run_dir / "numerics.npz"
    if npz.is_file():
        with np.load(npz, allow_pickle=False) as archive:
            data = {k: archive[k] for k in archive.files}
        plots += [
            ("grad_histogram.png", lambda p: _grad_histogram(data, summary, p)),
            ("input_bits.png", lambda p: _input_bits(data, summary, p)),
        ]
    return plots


def _series(rows: list[dict[str, str]], column: str) -> tuple[list[int], list[float], list[float], list[float]]:
    """Epochs and the mean, min and max over seeds of one training.csv column (empty cells —
    diverged or stopped seeds — are left out)."""
    by_epoch: dict[int, list[float]] = {}
    for r in rows:
        value = r.get(column, "")
        if value not in ("", None):
            by_epoch.setdefault(int(r["epoch"]), []).append(float(value))
    epochs = sorted(by_epoch)
    return (epochs, [float(np.mean(by_epoch[e])) for e in epochs], [min(by_epoch[e]) for e in epochs],
            [max(by_epoch[e]) for e in epochs])


def _curves(rows: list[dict[str, str]], summary: dict, path: Path) -> bool:
    if not rows:
        return False
    alpha_cols = [c for c in rows[0] if "_pact_alpha." in c]
    seeds = len({r["seed"] for r in rows}) if "seed" in rows[0] else 1
    fig = Figure(figsize=(14 if alpha_cols else 10, 3.8), constrained_layout=True)
    axes = fig.subplots(1, 3 if alpha_cols else 2)
    acc_ax, loss_ax = axes[0], axes[1]
    for label in ("policy", "baseline"):
        name = summary["runs"][label]["precision"]
        for ax, metric in ((acc_ax, "accuracy"), (loss_ax, "loss")):
            for part, style in (("test", "-"), ("train", ":")):
                epochs, mean, lo, hi = _series(rows, f"{label}_{part}_{metric}")
                if not epochs:
                    continue
                ax.plot(epochs, mean, color=COLORS[label], linestyle=style, label=f"{name} {part}")
                if seeds > 1 and part == "test":
                    ax.fill_between(epochs, lo, hi, color=COLORS[label], alpha=0.15, linewidth=0)
    spread = f" (mean of {seeds} seeds; band: min to max)" if seeds > 1 else ""
    for ax in (acc_ax, loss_ax):
        if not ax.lines:
            ax.text(0.5, 0.5, "no epoch finished (the trainings diverged)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9)
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("accuracy" + spread, fontsize=9)
    acc_ax.grid(alpha=0.3)
    if acc_ax.lines:
        acc_ax.legend(fontsize=8)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_yscale("log")
    loss_ax.set_title("loss" + spread, fontsize=9)
    loss_ax.grid(alpha=0.3)
    if loss_ax.lines:
        loss_ax.legend(fontsize=8)
    if alpha_cols:
        ax = axes[2]
        for col in alpha_cols:
            epochs, mean, lo, hi = _series(rows, col)
            ax.plot(epochs, mean, marker=".", label=col.split("_pact_alpha.", 1)[1])
            if seeds > 1:
                ax.fill_between(epochs, lo, hi, alpha=0.15, linewidth=0)
        ax.set_xlabel("epoch")
        ax.set_ylabel("α (clip value)")
        ax.set_title(f"PACT clip α of {summary['runs']['policy']['precision']}, end of epoch", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="layer", title_fontsize=8)
    fig.suptitle(f"{summary['workload']}: training in {summary['precision']} vs {summary['baseline_precision']}")
    fig.savefig(path, dpi=110)
    return True


def _grad_histogram(data: dict, summary: dict, path: Path) -> bool:
    """|g| on a log axis; the linear INT4 grid (max-scaled, 7 levels) crowds at the top of the range
    while the radix-4 grid (7 levels a factor 4 apart) spans it."""
    sample = np.abs(data["policy_grad_sample"].astype(np.float64))
    sample = sample[sample > 0]
    if sample.size == 0:
        return False
    peak = float(sample.max())
    lo = max(float(sample.min()), peak * 1e-9)
    fig = Figure(figsize=(8, 4.2), constrained_layout=True)
    ax = fig.subplots()
    bins = np.logspace(math.log10(lo), math.log10(peak) + 0.05, 80)
    ax.hist(sample, bins=bins, color="0.6", label="|gradient| (fp32)")
    ax.set_xscale("log")
    int4_step = peak / 7
    for q in range(1, 8):
        ax.axvline(q * int4_step, color="tab:red", linewidth=0.8, alpha=0.8,
                   label="linear INT4 grid (max scaling)" if q == 1 else None)
    ax.axvline(int4_step / 2, color="tab:red", linestyle=":", linewidth=0.8, label="INT4: below this → 0")
    levels = fp4r4_levels(fp4r4_scale_for(peak))
    for i, level in enumerate(levels):
        ax.axvline(level, color="tab:blue", linewidth=1.0, alpha=0.8,
                   label="radix-4 FP4 grid" if i == 0 else None)
    ax.axvline(levels[0] / 2, color="tab:blue", linestyle=":", linewidth=0.8, label="FP4: below this → 0")
    lost_int4 = float(np.mean(sample < int4_step / 2))
    lost_fp4 = float(np.mean(sample < levels[0] / 2))
    layer = str(data.get("policy_grad_layer", ""))
    ax.set_title(
        f"{summary['workload']}: gradient at {layer or 'a 4-bit layer'} — flushed to zero: "
        f"INT4 {lost_int4:.0%}, radix-4 FP4 {lost_fp4:.0%}", fontsize=9,
    )
    ax.set_xlabel("|gradient|")
    ax.set_ylabel("count")
    ax.legend(fontsize=7, loc="upper left")
    fig.savefig(path, dpi=110)
    return True


def _input_bits(data: dict, summary: dict, path: Path) -> bool:
    """One input image as the data has it and as each run's first layer reads it (drawn only when
    one of them reads it in 4 bits: the x·15 − 8 mapping onto −8…7)."""
    from accelsim.nn.train import quantize_image

    image = data["image"]
    formats = {label: str(data.get(f"{label}_input_format", "")) for label in ("policy", "baseline")}
    if image.ndim != 2 or not any(f in ("int4", "uint4") for f in formats.values()):
        return False
    panels = [("as loaded (float)", image)]
    for label, fmt in formats.items():
        bits = 4 if fmt in ("int4", "uint4") else None
        shown = quantize_image(image, 4) if bits else image
        panels.append((f"{summary['runs'][label]['precision']} reads it as {fmt}"
                       + (" (16 shades)" if bits else ""), shown))
    fig = Figure(figsize=(3 * len(panels), 3.0), constrained_layout=True)
    axes = fig.subplots(1, len(panels))
    for ax, (title, shown) in zip(axes, panels):
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{summary['workload']}: one test input (4 bits: x·15 − 8, rounded, onto −8…7)", fontsize=9)
    fig.savefig(path, dpi=110)
    return True
