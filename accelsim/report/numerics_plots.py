"""Plots of a trained run, from ``training.csv`` and ``numerics.npz`` in the run folder:
accuracy and loss curves of both precisions, the gradient histogram with the linear INT4 and the
radix-4 FP4 grids drawn over it, and one input image at 16, 8, 4 and 2 bits."""

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
            ("input_bits.png", lambda p: _input_bits(data["image"], p)),
        ]
    return plots


def _curves(rows: list[dict[str, str]], summary: dict, path: Path) -> bool:
    if not rows:
        return False
    epochs = [int(r["epoch"]) for r in rows]
    fig = Figure(figsize=(10, 3.8), constrained_layout=True)
    acc_ax, loss_ax = fig.subplots(1, 2)
    for label in ("policy", "baseline"):
        name = summary["runs"][label]["precision"]
        acc_ax.plot(epochs, [float(r[f"{label}_test_accuracy"]) for r in rows], color=COLORS[label], label=f"{name} test")
        acc_ax.plot(epochs, [float(r[f"{label}_train_accuracy"]) for r in rows], color=COLORS[label], linestyle=":", label=f"{name} train")
        loss_ax.plot(epochs, [float(r[f"{label}_test_loss"]) for r in rows], color=COLORS[label], label=f"{name} test")
        loss_ax.plot(epochs, [float(r[f"{label}_train_loss"]) for r in rows], color=COLORS[label], linestyle=":", label=f"{name} train")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("accuracy")
    acc_ax.set_title("accuracy")
    acc_ax.grid(alpha=0.3)
    acc_ax.legend(fontsize=8)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("cross-entropy loss")
    loss_ax.set_yscale("log")
    loss_ax.set_title("loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend(fontsize=8)
    fig.suptitle(f"{summary['workload']}: {summary['precision']} vs {summary['baseline_precision']}")
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


def _input_bits(image: np.ndarray, path: Path) -> bool:
    from accelsim.nn.train import quantize_image

    if image.ndim != 2:
        return False
    fig = Figure(figsize=(9, 2.8), constrained_layout=True)
    axes = fig.subplots(1, 4)
    for ax, bits in zip(axes, (16, 8, 4, 2)):
        ax.imshow(quantize_image(image, bits), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{bits} bits ({2 ** bits} shades)", fontsize=9)
        ax.axis("off")
    fig.suptitle("one input image at 16, 8, 4 and 2 bits (4 bits: x·15 − 8 onto −8…7)", fontsize=9)
    fig.savefig(path, dpi=110)
    return True
