"""What an Azure Automation job runs (Python 3.10 sandbox, Linux).

The sandbox passes parameters as positional argv strings and ignores their names, so each runbook takes ONE
parameter holding a JSON object, validated with pydantic. Output goes to stdout with the stream prefixes the
service understands (``ERROR:``, ``WARNING:``, ``VERBOSE:``; plain lines are the Output stream), flushed line by
line so a job stopped at its time limit keeps its tail. Authentication is the Automation account's managed
identity (``ManagedIdentityCredential``; ``client_id`` selects a user-assigned one). Nothing ever prompts.

Exit status: 0 done, 1 the work failed (a remediation or verification failed), 2 bad parameter or refused.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runbooks.errors import ConfirmationRequired, RunbookError, UsageError, exit_code

P = TypeVar("P", bound="JobParameters")


class JobParameters(BaseModel):
    """Settings every runbook takes. ``subscription_id`` falls back to env ``AZURE_SUBSCRIPTION_ID``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subscription_id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    client_id: str | None = Field(None, description="client id of a user-assigned identity (cloud jobs only)")
    store: str | None = Field(None, description="blob container for journals and locks, "
                              "https://ACCOUNT.blob.core.windows.net/CONTAINER (default: the sandbox's disk, "
                              "lost when the job ends)")
    allow_local_store: bool = Field(False, description="let a job that changes VMs keep its journal on the "
                                    "sandbox's disk (lost with the job: an interrupted run cannot be resumed)")


def _known_scenario(value: str | None) -> str | None:
    """A scenario id of one of the shipped playbooks (a typo must fail before the job reads anything)."""
    from runbooks.playbook import load_playbooks

    if value is None:
        return None
    known = sorted({sc.id for pb in load_playbooks().values() for sc in pb.scenarios})
    if value not in known:
        raise ValueError(f"not a scenario of any playbook; use one of {', '.join(known)}")
    return value


class SweepParameters(JobParameters):
    resource_group: str | None = None
    remediate: bool = False
    max_concurrency: int = Field(4, ge=1, description="at most runbooks.sweep.MAX_CONCURRENCY")
    max_errors: int = Field(1, ge=1)
    max_vms: int = Field(10, ge=1)
    admin_secret: str | None = Field(None, description="for steps that set an admin password: env:NAME or a Key "
                                     "Vault secret URI")
    prefer: str | None = Field(None, description="when several scenarios fit a VM and its playbook says the choice "
                               "matters, use this one (without it such VMs are skipped)")

    @field_validator("prefer")
    @classmethod
    def _prefer_known(cls, v: str | None) -> str | None:
        return _known_scenario(v)

    @field_validator("max_concurrency")
    @classmethod
    def _concurrency_bound(cls, v: int) -> int:
        from runbooks.sweep import MAX_CONCURRENCY  # not at import: a Remediate-VM job never loads the sweep

        if v > MAX_CONCURRENCY:
            raise ValueError(f"Input should be less than or equal to {MAX_CONCURRENCY}")
        return v


class RemediateParameters(JobParameters):
    vm: str = Field(min_length=1, description="RESOURCE_GROUP/NAME or a full VM resource id")
    playbook: str | None = Field(None, description="the playbook id (default: the one that detects the VM's state)")
    scenario: str | None = Field(None, description="the scenario id (default: the one that fits)")
    set: dict[str, dict[str, Any]] = Field(default_factory=dict, description="step parameters, "
                                           '{"STEP": {"PARAM": value}}, as --set STEP.PARAM=VALUE does')

    @field_validator("scenario")
    @classmethod
    def _scenario_known(cls, v: str | None) -> str | None:
        return _known_scenario(v)
    admin_secret: str | None = Field(None, description="env:NAME or a Key Vault secret URI (never the value)")
    apply: bool = Field(False, description="false: plan only (read-only); true: remediate without asking")
    verify_timeout: float | None = Field(None, gt=0)


def parse_parameter(argv: list[str], model: type[P]) -> P:
    """The one JSON parameter → ``model``. Tolerates what the sandboxes do to it: a value split at spaces into
    several argv items, surrounding quotes, and the Linux worker's ``str(json.loads(value))`` (a Python repr)."""
    text = " ".join(argv).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    data: Any = {}
    if text:
        try:
            data = json.loads(text)
        except ValueError:
            try:
                data = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise UsageError("the runbook parameter is not a JSON object, e.g. "
                                 '{"vm": "rg/name", "apply": false}') from None
    if not isinstance(data, dict):
        raise UsageError(f"the runbook parameter must be a JSON object, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "parameter"
        raise UsageError(f"bad runbook parameter {where}: {first['msg']}") from None


class JobOutput:
    """Lines for the job's streams. One call = one record; the service caps a record at 1 MiB."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.lock = threading.Lock()  # a sweep's VMs report from parallel threads: their lines never mix

    def _emit(self, prefix: str, text: str) -> None:
        records = "".join(f"{prefix}{line}\n" for line in str(text).splitlines() or [""])
        with self.lock:
            self.stream.write(records)
            self.stream.flush()

    def output(self, text: str) -> None:
        self._emit("", text)

    def warning(self, text: str) -> None:
        self._emit("WARNING: ", text)

    def error(self, text: str) -> None:
        self._emit("ERROR: ", text)

    def verbose(self, text: str) -> None:
        self._emit("VERBOSE: ", text)


class _StreamHandler(logging.Handler):
    """Library warnings (azure-identity, azure-core) go to the job's Warning/Error streams, not stderr."""

    def __init__(self, out: JobOutput) -> None:
        super().__init__(logging.WARNING)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        (self.out.error if record.levelno >= logging.ERROR else self.out.warning)(self.format(record))


def connect(params: JobParameters) -> Any:
    """The ``Azure`` clients, authenticated as the Automation account's managed identity."""
    from azure.identity import ManagedIdentityCredential

    from runbooks.azure import Azure, Connection

    if not os.environ.get("IDENTITY_ENDPOINT"):
        raise UsageError("no managed identity: IDENTITY_ENDPOINT is not set (enable an identity on the "
                         "Automation account; Hybrid Workers use the account's system-assigned identity)")
    credential = (ManagedIdentityCredential(client_id=params.client_id) if params.client_id
                  else ManagedIdentityCredential())
    return Azure(Connection.from_env(subscription=params.subscription_id), credential=credential)


def run_job(argv: list[str], model: type[P], body: Callable[[P, JobOutput], int],
            out: JobOutput | None = None) -> int:
    """Parse, run ``body``, map errors to stream lines and an exit status. A traceback means a bug."""
    out = out or JobOutput()
    if threading.current_thread() is threading.main_thread():
        from runbooks.errors import stop_on_sigterm

        stop_on_sigterm()  # a stopped job (SIGTERM) still puts back a lifted lock
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    handler = _StreamHandler(out)
    logging.getLogger("azure").addHandler(handler)
    logging.getLogger("azure").propagate = False
    try:
        return body(parse_parameter(argv, model), out)
    except RunbookError as e:
        out.error(str(e))
        return exit_code(e)
    except Exception as e:  # report it in the job's Error stream; the traceback goes to stderr (also Error)
        out.error(f"unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
        traceback.print_exc()
        return 1
    finally:
        logging.getLogger("azure").removeHandler(handler)


def _sweep(p: SweepParameters, out: JobOutput) -> int:
    from runbooks.sweep import sweep, sweep_text

    az = connect(p)
    _require_store(p, p.remediate)
    report = sweep(az, resource_group=p.resource_group, remediate=p.remediate, max_concurrency=p.max_concurrency,
                   max_errors=p.max_errors, max_vms=p.max_vms, admin_secret=p.admin_secret, prefer=p.prefer,
                   store=p.store, progress=out.verbose)
    out.output(sweep_text(report))
    out.output(json.dumps(report.to_dict(), separators=(",", ":"), default=str))
    for line in report.failures():
        out.error(line)
    return 0 if report.ok else 1  # a failure, or remediations stopped early


def _require_store(p: JobParameters, writes: bool) -> None:
    """Once a VM is deleted, its saved definition is the only copy: a job must not keep it on a disk that
    disappears with the job, unless told to."""
    if writes and not p.store and not p.allow_local_store:
        raise UsageError("a job that changes VMs needs 'store' (a blob container URL for the journal and the "
                         "VM's saved definition); the sandbox's disk is lost when the job ends. Pass "
                         "\"allow_local_store\": true to accept that")


def _never_ask(question: str) -> bool:
    raise ConfirmationRequired(f"a job cannot answer '{question}'")


def _remediate(p: RemediateParameters, out: JobOutput) -> int:
    from runbooks.apply import Hooks
    from runbooks.errors import AdviceOnly
    from runbooks.observe import VmRef
    from runbooks.remediate import remediate_vm
    from runbooks.render import outcome_text, plan_text

    ref = VmRef.parse(p.vm)
    az = connect(p)
    _require_store(p, p.apply)
    try:
        result = remediate_vm(az, ref, Hooks(confirm=_never_ask, progress=out.output), playbook=p.playbook,
                              scenario=p.scenario, settings=p.set, admin_secret=p.admin_secret,
                              verify_timeout=p.verify_timeout, yes=True, dry_run=not p.apply, store=p.store,
                              show_plan=lambda plan: out.output(plan_text(plan)))
    except AdviceOnly as advice:  # a recommendation goes to the Output stream: nothing failed
        out.output(str(advice))
        return 0
    if result.outcome is None:
        out.output(f"Plan only (apply=false): nothing was changed ({az.counter.writes} writes).")
        return 0
    out.output(outcome_text(result.outcome))
    return 0


def sweep_main(argv: list[str] | None = None) -> int:
    return run_job(sys.argv[1:] if argv is None else argv, SweepParameters, _sweep)


def remediate_main(argv: list[str] | None = None) -> int:
    return run_job(sys.argv[1:] if argv is None else argv, RemediateParameters, _remediate)
