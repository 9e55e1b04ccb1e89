"""The one error tree of the toolkit. ``tasks.py`` prints any ``RunbookError`` as one line and exits non-zero;
anything else reaching the user is a bug and shows its traceback.

    RunbookError              anything a user can act on
      UsageError              bad input on the command line or in a parameter (malformed id, bad flag)
      ArticleError            a SelfHelp article cannot be parsed (strict mode); names file and line
      PlaybookError           an invalid playbook; names file and field
"""

from __future__ import annotations


class RunbookError(Exception):
    """Base of every error a user can act on. The message says what happened and what to do next."""


class UsageError(RunbookError):
    """Bad input: a malformed id, an unknown option value, a missing required value."""


class ArticleError(RunbookError):
    """A SelfHelp article that strict parsing rejects; the message names file, line and problem."""

    def __init__(self, problem: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path or '<article>'}" + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {problem}")
        self.problem, self.path, self.line = problem, path, line


class PlaybookError(RunbookError):
    """A playbook that does not validate; the message starts with '<file>: <field path>'."""
