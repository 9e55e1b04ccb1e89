"""Microsoft.Automation errors. Where azure-automation.md quotes the service, the message is the service's
(job schedule conflicts, the unknown-client-id identity error); the rest are armsim's own wording, with
ARM's envelope and the status the real service uses for that kind of failure."""

from __future__ import annotations

from armsim.errors import BadRequest, Conflict, NotFound, ParentResourceNotFound, ResourceNotFound

SYSTEM_RUNTIME_ENVIRONMENTS = ("PowerShell-5.1", "PowerShell-7.1", "PowerShell-7.2", "Python-2.7", "Python-3.8",
                               "Python-3.10")


def account_not_found(name: str, resource_group: str) -> ResourceNotFound:
    return ResourceNotFound("Microsoft.Automation/automationAccounts", name, resource_group)


def parent_not_found(account: str) -> ParentResourceNotFound:
    return ParentResourceNotFound(f"automationAccounts/{account}")


def not_found(kind: str, name: str) -> NotFound:
    """A child of an account (runbook, job, schedule…) that does not exist: the RP's 404 ``NotFound``."""
    return NotFound(f"{kind} '{name}' was not found.")


def bad_request(message: str, target: str | None = None) -> BadRequest:
    return BadRequest(message, target=target)


def system_runtime_environment(name: str) -> BadRequest:
    return BadRequest(f"Runtime environment '{name}' is system generated and cannot be edited.")


def invalid_runtime_environment_name(name: str) -> BadRequest:
    return BadRequest(f"Invalid runtime environment name '{name}': it must begin with a letter and contain only "
                      "letters, numbers, underscores and dashes.")


def unsupported_runtime(language: object, version: object) -> BadRequest:
    return BadRequest(f"Runtime '{language} {version}' is not available for a user-created runtime environment: "
                      "armsim emulates Python 3.10 only (language 'Python', version '3.10').", target="runtime")


def runtime_immutable() -> BadRequest:
    return BadRequest("The language and version of a runtime environment cannot be changed; create a new runtime "
                      "environment instead.", target="runtime")


def runtime_environment_missing(name: str, account: str) -> BadRequest:
    return BadRequest(f"Runtime environment '{name}' was not found in automation account '{account}'.",
                      target="runtimeEnvironment")


def unsupported_runbook_type(runbook_type: object) -> BadRequest:
    return BadRequest(f"Runbook type '{runbook_type}' is not emulated: armsim runs runbookType 'Python' with a "
                      "Python 3.10 runtimeEnvironment only.", target="runbookType")


def runbook_not_published(name: str) -> BadRequest:
    return BadRequest(f"Runbook '{name}' is not published. Publish the runbook before starting a job.")


def no_draft(name: str) -> BadRequest:
    return BadRequest(f"Runbook '{name}' has no draft content to publish.")


def no_content(name: str, draft: bool) -> NotFound:
    return NotFound(f"The {'draft' if draft else 'published'} content of runbook '{name}' was not found.")


def job_schedule_pair_exists() -> Conflict:
    return Conflict("A job schedule for the specified runbook and schedule already exists.")


def job_schedule_id_exists() -> Conflict:
    return Conflict("A jobSchedule with same id already exists.")


def job_exists(name: str) -> Conflict:
    return Conflict(f"A job with name '{name}' already exists.")


def hybrid_worker(run_on: str) -> BadRequest:
    return BadRequest(f"Cannot run on Hybrid Worker group '{run_on}': runbooks in a user-created runtime "
                      "environment run in Azure only (runOn must be empty).", target="runOn")
