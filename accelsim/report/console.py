"""The comparison table the CLI prints (built here, printed only by ``accelsim.cli``)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from accelsim.report.text import (
    accuracy_text, array_text, breakdown_lines, delta_text, energy_breakdown_line, power_text,
    quantization_text, scale_bits_text, stall_text,
)

__all__ = ["comparison_table", "breakdown_lines", "energy_breakdown_line"]


def _fmt_time(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.4g} {unit}"
    return f"{seconds:.4g} s"


def _fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}x"


def _area(run: dict[str, Any]) -> str:
    return "n/a" if run.get("area_mm2") is None else f"{run['area_mm2']:.3g} mm²"


def _iso(summary: dict[str, Any]) -> str:
    return f"iso {summary['iso']}" if summary.get("iso") else ""


def comparison_table(summary: dict[str, Any]) -> Table:
    """One row per metric; the policy and baseline runs side by side with the ratio between them."""
    policy, base = summary["runs"]["policy"], summary["runs"]["baseline"]
    table = Table(title=f"{summary['workload']}: {summary['precision']} vs {summary['baseline_precision']}")
    table.add_column("", no_wrap=True)
    table.add_column(f"{policy['precision']} on {policy['hardware']}", justify="right")
    table.add_column(f"{base['precision']} on {base['hardware']}", justify="right")
    table.add_column("vs baseline", justify="right")


    def energy(run: dict[str, Any]) -> str:
        if run["energy_pj"] is None:
            return "n/a"
        joules = run["energy_pj"] * 1e-12
        for unit, scale in (("J", 1.0), ("mJ", 1e-3), ("µJ", 1e-6), ("nJ", 1e-9)):
            if joules >= scale:
                return f"{joules / scale:.4g} {unit}"
        return f"{run['energy_pj']:.4g} pJ"

    delta = summary["accuracy_delta"]
    table.add_row("steps", f"{policy['steps']:,}", f"{base['steps']:,}", "")
    table.add_row("cycles", f"{policy['cycles']:,}", f"{base['cycles']:,}", "")
    table.add_row("time", _fmt_time(policy["time_s"]), _fmt_time(base["time_s"]),
                  f"speedup {_fmt_ratio(summary['speedup'])}")
    table.add_row("array utilization", f"{policy['utilization']:.1%}", f"{base['utilization']:.1%}", "")
    table.add_row("memory stall", stall_text(policy), stall_text(base), "")
    table.add_row("energy", energy(policy), energy(base), f"ratio {_fmt_ratio(summary['energy_ratio'])}")
    table.add_row("array", array_text(policy), array_text(base), _iso(summary))
    table.add_row("area", _area(policy), _area(base), "")
    table.add_row("average power", power_text(policy.get("average_power_mw")),
                  power_text(base.get("average_power_mw")), "")
    table.add_row("4-bit share of MACs", f"{policy['four_bit_mac_fraction']:.1%}",
                  f"{base['four_bit_mac_fraction']:.1%}", "")
    table.add_row("quantization cycles", quantization_text(policy), quantization_text(base), "")
    exposed = "quantization_exposed_cycles"
    table.add_row("  array idle for it", quantization_text(policy, exposed), quantization_text(base, exposed), "")
    table.add_row("DRAM scale bits", scale_bits_text(policy), scale_bits_text(base), "")
    if summary.get("trained"):
        seeds = policy["seeds"] or []
        table.add_row(f"accuracy ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})",
                      accuracy_text(policy), accuracy_text(base), delta_text(summary))
    else:
        table.add_row("accuracy", "not trained", "not trained", "")
    return table
