"""Every plot of a run or sweep folder, regenerated from the folder's files alone."""

from __future__ import annotations

from pathlib import Path

from accelsim.errors import InputError


def plot_folder(folder: Path) -> list[str]:
    """Regenerate the plots of a run folder (``summary.json``) or a sweep folder (``results.csv``)."""
    if not folder.is_dir():
        raise InputError.single(str(folder), "", "not a folder")
    if (folder / "results.csv").is_file():
        from accelsim.report.sweep_plots import plot_sweep

        return plot_sweep(folder)
    if (folder / "summary.json").is_file():
        from accelsim.report.writers import finish_run_folder

        return finish_run_folder(folder)
    raise InputError.single(str(folder), "", "neither a run folder (summary.json) nor a sweep folder (results.csv)")
