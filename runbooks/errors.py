"""The one error tree of the toolkit. ``tasks.py`` prints any ``RunbookError`` as one line and exits non-zero;
anything else reaching the user is a bug and shows its traceback.

    RunbookError              anything a user can act on
      UsageError              bad input on the command line or in a parameter (malformed id, bad flag, bad file)
      ArticleError            a SelfHelp article cannot be parsed (strict mode); names file and line
      PlaybookError           an invalid playbook; names file and field
      TargetNotFound          the VM, resource group or image does not exist
      NotApplicable           no playbook scenario fits the VM (e.g. it is not generalized)
        AdviceOnly            the playbook only advises for this VM (its fixes write when named); exit 0
      ChoiceRequired          several scenarios fit and the playbook says the choice matters: name one
      StepRefused             no safe way forward from this state (locked scope, missing image, disk would be lost)
      ConfirmationRequired    confirm mode without a terminal and without --yes
      Aborted                 the operator answered no; nothing after that point ran
      PlanDrifted             what a saved plan was computed from has changed; plan again
      SecretMissing           the admin secret reference cannot be resolved (value never shown)
      LockHeld                another remediation of the same VM is running (who, since when)
        LockLost              this run's lock was broken or taken over; it stopped before its next write
      JournalError            a run journal is unreadable or belongs to another VM
      ApplyFailed             an Azure call failed; carries the ARM error code and message
      VerifyFailed            the calls succeeded but the VM does not pass verification; lists the ways back

``exit_code`` maps the tree to the exit status every face uses (the CLI and the Automation runbooks):
1 when a step's work was attempted and failed (ApplyFailed of a step, VerifyFailed, LockLost), 2 for
everything refused before or instead of acting, 0 for advice (nothing failed: nothing was asked to change).
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


class TargetNotFound(RunbookError):
    """The VM, its resource group or a resource the plan needs does not exist."""


class NotApplicable(RunbookError):
    """No scenario of any playbook fits the observed VM."""


class AdviceOnly(NotApplicable):
    """The playbook recommends for this VM and writes only when its fix is named (``--scenario``): the message is
    the recommendation and the command that applies it; nothing was changed."""


class ChoiceRequired(RunbookError):
    """Several scenarios fit the VM and the playbook says a wrong guess does harm: the operator must choose."""


class StepRefused(RunbookError):
    """The toolkit will not take this step from this state (it would lose data or cannot succeed)."""


class ConfirmationRequired(RunbookError):
    """Confirm mode needs a terminal; automation must pass --yes."""


class Aborted(RunbookError):
    """The operator declined a step."""


class PlanDrifted(RunbookError):
    """The VM changed since the plan was made."""


class SecretMissing(RunbookError):
    """The admin secret reference does not resolve."""


class LockHeld(RunbookError):
    """Another run holds the VM's lock."""


class LockLost(LockHeld):
    """The run no longer holds its VM's lock (lease broken, taken over or expired); it stopped before its
    next write and leaves its journal to whoever holds the lock now."""


class JournalError(RunbookError):
    """A journal cannot be read or does not match the VM."""


class ApplyFailed(RunbookError):
    """An Azure call failed. ``code`` and ``message`` are ARM's."""

    def __init__(self, message: str, *, code: str | None = None, step: str | None = None) -> None:
        super().__init__(message)
        self.code, self.step = code, step


class VerifyFailed(RunbookError):
    """The recreated VM did not pass verification."""

    def __init__(self, message: str, *, failures: list[str] | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures or [])


WORK_FAILED, REFUSED = 1, 2


def exit_code(e: RunbookError) -> int:
    """The exit status for an error: 1 when a step's work was attempted and failed (a call of a step, the
    verification, a lost lock) or the operator said no, 2 when it was refused or failed before any step (bad
    input, reading Azure)."""
    if isinstance(e, AdviceOnly):
        return 0
    if isinstance(e, ApplyFailed):
        return WORK_FAILED if e.step else REFUSED
    return WORK_FAILED if isinstance(e, (VerifyFailed, LockLost, Aborted)) else REFUSED


def stop_on_sigterm() -> None:
    """SIGTERM (an Automation job stopped, a service shut down) raises SystemExit in the main thread instead of
    ending the process at once, so a run still puts back what its ``always`` steps promise (a lifted lock)."""
    import signal

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _exit)
