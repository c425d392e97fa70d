"""The result of an exercise check: printed as one stable line, truthy when the answer is correct."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["Feedback", "run_check", "require"]


@dataclass(frozen=True)
class Feedback:
    """``ok``: True (correct), False (wrong, ``message`` says what is off) or None (not attempted)."""

    exercise: str
    ok: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __str__(self) -> str:
        status = {True: "correct", False: "not yet", None: "not attempted"}[self.ok]
        return f"exercise {self.exercise}: {status}" + (f" -- {self.message}" if self.message else "")

    __repr__ = __str__

    def _repr_pretty_(self, p, cycle) -> None:  # IPython display: the same one line
        p.text(str(self))


def run_check(exercise: str, body: Callable[[], tuple[bool, str]]) -> Feedback:
    """Run ``body`` (which calls the learner's answer and returns ``(ok, message)``); a
    ``NotImplementedError`` means "not attempted", any other exception is reported as a wrong answer."""
    try:
        ok, message = body()
    except NotImplementedError:
        return Feedback(exercise, None, "write your answer in the cell above and run the check again")
    except Exception as exc:  # the learner's code failed: say how, do not crash the notebook
        return Feedback(exercise, False, f"your answer raised {type(exc).__name__}: {exc}")
    return Feedback(exercise, bool(ok), message)


def require(*answers) -> None:
    """Inside a check: an answer left at ``None`` means "not attempted"."""
    if any(a is None for a in answers):
        raise NotImplementedError
