"""Exception types shared across accelsim.

Library code raises these; only ``accelsim.cli`` turns them into messages and exit codes. Every
message names the file (when there is one) and the field path, so that one line tells the user
what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem in one input: which file, which field, what is wrong."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class InputError(Exception):
    """Bad user input (a spec file, a trace, a topology CSV, a CLI value). Exit code 2.

    Carries every problem found, so a user fixes them all in one go.
    """

    def __init__(self, problems: list[Problem] | Problem):
        if isinstance(problems, Problem):
            problems = [problems]
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, file: str, field: str, message: str) -> "InputError":
        return cls(Problem(str(file), field, message))


class UnsupportedOpError(InputError):
    """A trace op that the hardware has no unit or mode for."""
