"""Microsoft.Automation handlers: accounts, runtime environments, packages, runbooks (draft, publish,
content), schedules, job schedules, jobs (output, streams, stop) and variables; plus the control API
under ``/_armsim/automation/``.

Draft replacement and publish answer **202 only** with a ``Location`` to an ``operationResults`` URL
(azure-mgmt-automation 2.0.0 raises on anything else); armsim finishes both at once, so that URL
answers 200 on the first poll.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote

from armsim.automation import exceptions as E
from armsim.automation import sandbox
from armsim.automation.models import (
    GUID,
    AutomationAccount,
    AutomationState,
    Job,
    JobSchedule,
    Package,
    Runbook,
    RuntimeEnvironment,
    Schedule,
    Variable,
    matches,
    parse_filter,
)
from armsim.errors import BadRequest, NotFound
from armsim.http import ArmRequest, ArmResponse, ok, text
from armsim.responses import page, retry_hint
from armsim.state import World


def _auto(world: World, subscription: str) -> AutomationState:
    return world.sub(subscription).automation


def _account(world: World, subscriptionId: str, resourceGroupName: str, automationAccountName: str,
             ) -> tuple[AutomationState, AutomationAccount]:
    auto = _auto(world, subscriptionId)
    return auto, auto.account(resourceGroupName, automationAccountName, parent=True)


def _created(item_dict: dict[str, Any], created: bool) -> ArmResponse:
    return ok(item_dict, status=201 if created else 200)


def _filtered(req: ArmRequest, rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clauses = parse_filter(req.arg("$filter"))
    return [r for r in rendered if matches(r, clauses)]


# --- automation accounts ------------------------------------------------------------------------------------
def put_account(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                automationAccountName: str) -> ArmResponse:
    auto = _auto(world, subscriptionId)
    acct, created = auto.put_account(resourceGroupName, automationAccountName, req.json(), req.principal)
    return _created(acct.to_dict(auto.sub.tenant_id), created)


def patch_account(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                  automationAccountName: str) -> ArmResponse:
    auto = _auto(world, subscriptionId)
    acct = auto.account(resourceGroupName, automationAccountName)
    return ok(auto.patch_account(acct, req.json(), req.principal).to_dict(auto.sub.tenant_id))


def get_account(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                automationAccountName: str) -> ArmResponse:
    auto = _auto(world, subscriptionId)
    return ok(auto.account(resourceGroupName, automationAccountName).to_dict(auto.sub.tenant_id))


def delete_account(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str,
                   automationAccountName: str) -> ArmResponse:
    auto = _auto(world, subscriptionId)
    acct = auto.accounts.get(auto.account_id(resourceGroupName, automationAccountName).lower())
    if acct is None:
        return ArmResponse(204)
    jobs = auto.delete_account(acct)
    runtime = sandbox.runtime_for(world)
    if runtime is not None:
        runtime.cancel([j.id.lower() for j in jobs])
    return ArmResponse(200)


def list_accounts(world: World, req: ArmRequest, subscriptionId: str, resourceGroupName: str | None = None,
                  ) -> ArmResponse:
    auto = _auto(world, subscriptionId)
    return page(req, auto.accounts_in(resourceGroupName), lambda a: a.to_dict(auto.sub.tenant_id),
                world.config.page_size)


# --- runtime environments and packages -----------------------------------------------------------------------
def _env(auto: AutomationState, acct: AutomationAccount, name: str) -> RuntimeEnvironment:
    env: RuntimeEnvironment = auto.child(auto.runtime_environments, acct.id, "runtimeEnvironments", name,
                                         "Runtime environment")
    return env


def put_runtime_environment(world: World, req: ArmRequest, runtimeEnvironmentName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env, created = auto.put_runtime_environment(acct, runtimeEnvironmentName, req.json())
    return _created(env.to_dict(), created)


def patch_runtime_environment(world: World, req: ArmRequest, runtimeEnvironmentName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(auto.patch_runtime_environment(_env(auto, acct, runtimeEnvironmentName), req.json()).to_dict())


def get_runtime_environment(world: World, req: ArmRequest, runtimeEnvironmentName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_env(auto, acct, runtimeEnvironmentName).to_dict())


def delete_runtime_environment(world: World, req: ArmRequest, runtimeEnvironmentName: str,
                               **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env = auto.runtime_environments.get(f"{acct.id}/runtimeEnvironments/{runtimeEnvironmentName}".lower())
    if env is None:
        return ArmResponse(204)
    auto.delete_runtime_environment(env)
    return ArmResponse(200)


def list_runtime_environments(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    items = auto.children(auto.runtime_environments, acct.id, "runtimeEnvironments")
    return page(req, items, lambda e: e.to_dict(), world.config.page_size)


def _refresh(world: World, auto: AutomationState, pkg: Package) -> Package:
    runtime = sandbox.runtime_for(world)
    if runtime is not None:
        runtime.refresh_package(auto.sub.id, pkg, poll=True)
    return pkg


def put_package(world: World, req: ArmRequest, runtimeEnvironmentName: str, packageName: str,
                **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env = _env(auto, acct, runtimeEnvironmentName)
    runtime = sandbox.runtime_for(world)
    seconds = runtime.import_seconds() if runtime else sandbox.PACKAGE_IMPORT_S
    pkg, created = auto.put_package(env, packageName, req.json(), seconds)
    if runtime is not None:
        runtime.fetch_package(auto.sub.id, pkg)
    return _created(pkg.to_dict(), created)


def get_package(world: World, req: ArmRequest, runtimeEnvironmentName: str, packageName: str,
                **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env = _env(auto, acct, runtimeEnvironmentName)
    pkg: Package = auto.child(auto.packages, env.id, "packages", packageName, "Package")
    return ok(_refresh(world, auto, pkg).to_dict())


def delete_package(world: World, req: ArmRequest, runtimeEnvironmentName: str, packageName: str,
                   **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env = _env(auto, acct, runtimeEnvironmentName)
    if auto.packages.pop(f"{env.id}/packages/{packageName}".lower(), None) is None:
        return ArmResponse(204)
    return ArmResponse(200)


def list_packages(world: World, req: ArmRequest, runtimeEnvironmentName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    env = _env(auto, acct, runtimeEnvironmentName)
    items = [_refresh(world, auto, p) for p in auto.children(auto.packages, env.id, "packages")]
    return page(req, items, lambda p: p.to_dict(), world.config.page_size)


# --- runbooks ---------------------------------------------------------------------------------------------
def _runbook(auto: AutomationState, acct: AutomationAccount, name: str) -> Runbook:
    rb: Runbook = auto.child(auto.runbooks, acct.id, "runbooks", name, "Runbook")
    return rb


def put_runbook(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb, created = auto.put_runbook(acct, runbookName, req.json(), req.principal)
    return _created(rb.to_dict(), created)


def patch_runbook(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(auto.patch_runbook(_runbook(auto, acct, runbookName), req.json()).to_dict())


def get_runbook(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_runbook(auto, acct, runbookName).to_dict())


def delete_runbook(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb = auto.runbooks.get(f"{acct.id}/runbooks/{runbookName}".lower())
    if rb is None:
        return ArmResponse(204)
    auto.delete_runbook(rb)
    return ArmResponse(200)


def list_runbooks(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return page(req, auto.children(auto.runbooks, acct.id, "runbooks"), lambda r: r.to_dict(),
                world.config.page_size)


def _accepted(world: World, req: ArmRequest, path: str) -> ArmResponse:
    """202 with a Location to ``{path}/operationResults/{guid}`` on armsim's host."""
    location = f"{req.base_url}{quote(path)}/operationResults/{uuid.uuid4()}?api-version={req.api_version}"
    return ArmResponse(202, None, {"Location": location, **retry_hint(world, 0.0)})


def replace_draft_content(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb = _runbook(auto, acct, runbookName)
    auto.replace_draft(rb, req.text())
    return _accepted(world, req, f"{rb.id}/draft/content")


def get_draft_content(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb = _runbook(auto, acct, runbookName)
    if rb.draft_content is None:
        raise E.no_content(rb.name, draft=True)
    return text(rb.draft_content)


def get_content(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb = _runbook(auto, acct, runbookName)
    if rb.published_content is None:
        raise E.no_content(rb.name, draft=False)
    return text(rb.published_content)


def get_draft(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_runbook(auto, acct, runbookName).draft_dict())


def undo_edit(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    auto.undo_edit(_runbook(auto, acct, runbookName))
    return ok({})


def publish(world: World, req: ArmRequest, runbookName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rb = _runbook(auto, acct, runbookName)
    auto.publish(rb)
    return _accepted(world, req, f"{rb.id}/publish")


def operation_result(world: World, req: ArmRequest, runbookName: str, operationId: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    _runbook(auto, acct, runbookName)
    if not GUID.match(operationId):
        raise NotFound(f"Operation '{operationId}' was not found.", code="OperationNotFound")
    return ArmResponse(200)


# --- schedules and job schedules -------------------------------------------------------------------------
def _schedule(auto: AutomationState, acct: AutomationAccount, name: str) -> Schedule:
    sched: Schedule = auto.child(auto.schedules, acct.id, "schedules", name, "Schedule")
    return sched


def put_schedule(world: World, req: ArmRequest, scheduleName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    sched, created = auto.put_schedule(acct, scheduleName, req.json())
    return _created(sched.to_dict(world.clock()), created)


def patch_schedule(world: World, req: ArmRequest, scheduleName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(auto.patch_schedule(_schedule(auto, acct, scheduleName), req.json()).to_dict(world.clock()))


def get_schedule(world: World, req: ArmRequest, scheduleName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_schedule(auto, acct, scheduleName).to_dict(world.clock()))


def delete_schedule(world: World, req: ArmRequest, scheduleName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    auto.delete_schedule(_schedule(auto, acct, scheduleName))
    return ArmResponse(200)


def list_schedules(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    now = world.clock()
    return page(req, auto.children(auto.schedules, acct.id, "schedules"), lambda s: s.to_dict(now),
                world.config.page_size)


def put_job_schedule(world: World, req: ArmRequest, jobScheduleId: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(auto.create_job_schedule(acct, jobScheduleId, req.json()).to_dict(), status=201)


def _job_schedule(auto: AutomationState, acct: AutomationAccount, job_schedule_id: str) -> JobSchedule:
    js: JobSchedule = auto.child(auto.job_schedules, acct.id, "jobSchedules", job_schedule_id, "Job schedule")
    return js


def get_job_schedule(world: World, req: ArmRequest, jobScheduleId: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_job_schedule(auto, acct, jobScheduleId).to_dict())


def delete_job_schedule(world: World, req: ArmRequest, jobScheduleId: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    js = _job_schedule(auto, acct, jobScheduleId)
    del auto.job_schedules[js.id.lower()]
    return ArmResponse(200)


def list_job_schedules(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    rendered = _filtered(req, [j.to_dict() for j in auto.children(auto.job_schedules, acct.id, "jobSchedules")])
    return page(req, rendered, lambda d: d, world.config.page_size)


# --- jobs ---------------------------------------------------------------------------------------------------
def _job(auto: AutomationState, acct: AutomationAccount, name: str) -> Job:
    job: Job = auto.child(auto.jobs, acct.id, "jobs", name, "Job")
    return job


def put_job(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    job = auto.create_job(acct, jobName, req.json(), started_by=req.principal)
    sandbox.submit_job(auto.sub, job)
    return ok(job.to_dict(), status=201)


def get_job(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_job(auto, acct, jobName).to_dict())


def list_jobs(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    jobs = sorted(auto.children(auto.jobs, acct.id, "jobs"), key=lambda j: j.created)
    return page(req, _filtered(req, [j.list_item() for j in jobs]), lambda d: d, world.config.page_size)


def get_job_output(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return text(_job(auto, acct, jobName).output())


def get_job_runbook_content(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return text(_job(auto, acct, jobName).content)


def stop_job(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    job = _job(auto, acct, jobName)
    if not job.done:
        now = world.clock()
        runtime = sandbox.runtime_for(world)
        if runtime is not None and runtime.stop(job.id.lower()):
            if job.status == "Running":
                job.set_status("Stopping", now)
        else:  # nothing is running it: stop at once
            job.set_status("Stopped", now)
            job.end_time, job.provisioning_state = now, "Succeeded"
    return ArmResponse(200)


def list_job_streams(world: World, req: ArmRequest, jobName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    job = _job(auto, acct, jobName)
    rendered = _filtered(req, [job.stream_summary(s) for s in job.streams])
    return page(req, rendered, lambda d: d, world.config.page_size)


def get_job_stream(world: World, req: ArmRequest, jobName: str, jobStreamId: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    job = _job(auto, acct, jobName)
    for s in job.streams:
        if s["id"].lower() == jobStreamId.lower():
            return ok(job.stream_dict(s))
    raise E.not_found("Job stream", jobStreamId)


# --- variables ------------------------------------------------------------------------------------------------
def _variable(auto: AutomationState, acct: AutomationAccount, name: str) -> Variable:
    var: Variable = auto.child(auto.variables, acct.id, "variables", name, "Variable")
    return var


def put_variable(world: World, req: ArmRequest, variableName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    var, created = auto.put_variable(acct, variableName, req.json())
    return _created(var.to_dict(), created)


def patch_variable(world: World, req: ArmRequest, variableName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    var = _variable(auto, acct, variableName)
    props = req.json().get("properties") or {}
    merged = {"properties": {"value": props.get("value", var.value), "isEncrypted": var.is_encrypted,
                             "description": props.get("description", var.description)}}
    updated, _ = auto.put_variable(acct, var.name, merged)
    return ok(updated.to_dict())


def get_variable(world: World, req: ArmRequest, variableName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return ok(_variable(auto, acct, variableName).to_dict())


def delete_variable(world: World, req: ArmRequest, variableName: str, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    del auto.variables[_variable(auto, acct, variableName).id.lower()]
    return ArmResponse(200)


def list_variables(world: World, req: ArmRequest, **ids: str) -> ArmResponse:
    auto, acct = _account(world, **ids)
    return page(req, auto.children(auto.variables, acct.id, "variables"), lambda v: v.to_dict(),
                world.config.page_size)


# --- control API ----------------------------------------------------------------------------------------------
def handle_control(world: World, req: ArmRequest, parts: list[str]) -> ArmResponse:
    """``/_armsim/automation/…`` (called without the world lock, so ``wait`` can block):

        POST /_armsim/automation/fire {"jobSchedule": "<job schedule id>"}   start its job now → the job
        GET  /_armsim/automation/wait?job=<job id>&timeout=60             block until the job ends → the job
    """
    action = parts[0].lower() if parts else ""
    if action == "fire" and req.method == "POST":
        body = _control_body(req)
        js_id = str(body.get("jobSchedule") or "")
        with world.lock:
            sub, js = _find(world, js_id, "job_schedules")
            job = sandbox.start_from_job_schedule(sub, js)
            world.dirty = True
            return ok(job.to_dict(), status=201)
    if action == "wait" and req.method == "GET":
        job_id = req.arg("job") or ""
        try:
            timeout = float(req.arg("timeout") or 60)
        except ValueError:
            raise BadRequest("timeout must be a number of seconds.") from None
        try:
            return ok(wait_for_job(world, job_id, timeout))
        except TimeoutError as e:
            raise BadRequest(str(e), code="Timeout") from None
    raise NotFound(f"Unknown control endpoint {req.method} {req.path}.")


def _control_body(req: ArmRequest) -> dict[str, Any]:
    try:
        body = json.loads(req.body or b"{}")
    except ValueError as e:
        raise BadRequest(f"Invalid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def _find(world: World, resource_id: str, table: str) -> tuple[Any, Any]:
    for sub in world.subscriptions.values():
        item = getattr(sub.automation, table).get(resource_id.lower())
        if item is not None:
            return sub, item
    raise NotFound(f"No Automation resource '{resource_id}'.")


def wait_for_job(world: World, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll (outside the world lock) until the job is Completed, Failed or Stopped; its ARM shape."""
    deadline = time.monotonic() + timeout
    while True:
        with world.lock:
            _, job = _find(world, job_id, "jobs")
            if job.done:
                return dict(job.to_dict())
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Job '{job_id}' is still {job.status} after {timeout:g} s.")
        time.sleep(0.05)
