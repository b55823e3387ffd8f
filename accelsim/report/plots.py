"""Every plot of a run or sweep folder, regenerated from the folder's files alone."""

from __future__ import annotations

from pathlib import Path

from accelsim.errors import InputError


def plot_folder(folder: Path, level: str = "all") -> list[str]:
    """Draw the plots of ``level`` (``none``, ``summary``, ``all``) of a run folder
    (``summary.json``) or a sweep folder (``results.csv``) and rewrite its ``report.md``; return
    the names of the plots drawn."""
    if not folder.is_dir():
        raise InputError.single(str(folder), "", "not a folder")
    try:
        if (folder / "results.csv").is_file():
            from accelsim.report.sweep_report import write_sweep_report

            return write_sweep_report(folder, level)
        if (folder / "summary.json").is_file():
            from accelsim.report.writers import finish_run_folder

            return finish_run_folder(folder, level)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # the folder's files parse but lack a field or hold a wrong type: edited, damaged or
        # written by another version (a fresh run's own files never get here)
        raise InputError.single(
            str(folder), "", f"its files lack what the plots and report.md need ({type(exc).__name__}: {exc})",
        ) from None
    raise InputError.single(str(folder), "", "neither a run folder (summary.json) nor a sweep folder (results.csv)")
