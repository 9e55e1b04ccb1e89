"""Numbers the toolkit reads from the environment (``RUNBOOKS_POLL_INTERVAL_S``, ``RUNBOOKS_TIMEOUT_SCALE``,
``RUNBOOKS_PROGRESS_EVERY_S``…): unset means the default; anything but a positive number is one UsageError line."""

from __future__ import annotations

import os

from runbooks.errors import UsageError


def positive_number(name: str, default: float, what: str = "a number of seconds") -> float:
    """``$name`` as a number greater than 0, ``default`` when unset or blank."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{name} must be {what} greater than 0 (got {raw!r})")
    return value
