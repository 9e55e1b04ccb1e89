"""What every task module shares: the one-line error handler, connection and store options, confirm hooks."""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import invoke
from invoke import Exit

from runbooks.errors import Aborted, RunbookError, exit_code

if TYPE_CHECKING:
    from runbooks.apply import Hooks
    from runbooks.azure import Azure

# azure-identity logs each credential it tried as a warning; the failure reaches the user as one error line.
logging.getLogger("azure.identity").addHandler(logging.NullHandler())
logging.getLogger("azure.identity").propagate = False


def task(*args: Any, **kwargs: Any) -> Any:
    """invoke's ``@task(...)`` without automatic short flags: invoke derives them from each task's own option
    names, so ``-s`` meant --scenario in one task and --subscription in another. Every option is spelled out."""
    kwargs.setdefault("auto_shortflags", False)
    return invoke.task(*args, **kwargs)


@contextmanager
def user_errors(as_json: bool = False) -> Iterator[None]:
    """Turn the toolkit's expected errors into one line on stderr and the exit status of ``exit_code``; with
    ``as_json`` (the task's --json), stdout gets the same as a JSON document, so it is valid JSON either way."""
    printed = _PRINTED_JSON[0]
    try:
        yield
    except RunbookError as e:
        stopped = isinstance(e, Aborted)  # the operator said no: not an error, but not done either
        if as_json and _PRINTED_JSON[0] == printed:  # one document on stdout: not after the plan's
            print_json({"error": {"type": type(e).__name__, "message": str(e), "exit_code": exit_code(e),
                                  "stopped": stopped}})
        raise Exit(f"{'stopped' if stopped else 'error'}: {e}", code=exit_code(e)) from e


CONNECTION_HELP = {
    "endpoint": "ARM endpoint (default: $RUNBOOKS_ARM_ENDPOINT, else public Azure)",
    "ca_bundle": "CA bundle to trust for the endpoint (default: $RUNBOOKS_CA_BUNDLE)",
    "subscription": "subscription id (default: $AZURE_SUBSCRIPTION_ID)",
}
STORE_HELP = {"store": "where run journals and locks live: a directory, or a blob container "
              "https://ACCOUNT.blob.core.windows.net/CONTAINER (default: $RUNBOOKS_STORE_URL + "
              "$RUNBOOKS_STORE_CONTAINER, else $RUNBOOKS_HOME)"}


def azure(endpoint: str, ca_bundle: str, subscription: str) -> Azure:
    from runbooks.azure import Azure, Connection

    return Azure(Connection.from_env(endpoint=endpoint or None, ca_bundle=ca_bundle or None,
                                     subscription=subscription or None))


def hooks(yes: bool, dry_run: bool = False) -> Hooks:
    """Confirm mode asks on the terminal; without one (and without --yes) it refuses before any write. Waits show
    as live status lines on a terminal, as one plain line per event otherwise (``runbooks.progress``)."""
    from runbooks.apply import Hooks
    from runbooks.errors import ConfirmationRequired
    from runbooks.progress import for_stream

    if not yes and not dry_run and not sys.stdin.isatty():
        raise ConfirmationRequired("confirm mode needs a terminal to ask before destructive steps: pass --yes "
                                   "for automation, or --dry-run to see the plan")

    tracker = for_stream(sys.stdout)
    atexit.register(tracker.close)  # whatever ends the command, no live line is left and the cursor comes back

    def confirm(question: str) -> bool:
        with tracker.paused():
            return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")

    def choose(question: str, options: list[tuple[str, str]]) -> str | None:
        print(f"{question}.")
        for n, (scenario, evidence) in enumerate(options, 1):
            print(f"  {n}. {scenario}: {evidence}")
        with tracker.paused():
            answer = input(f"Which scenario (1-{len(options)}, or a scenario id; empty stops)? ").strip()
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1][0]
        return answer or None

    return Hooks(confirm=confirm, progress=tracker.line, choose=choose, tracker=tracker)


_PRINTED_JSON = [0]  # documents print_json wrote: after one, an error is the stderr line only


def print_json(data: Any) -> None:
    import json

    _PRINTED_JSON[0] += 1
    print(json.dumps(data, indent=2, default=str))
