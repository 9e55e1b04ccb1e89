"""Microsoft.Automation routes (api-version 2024-10-23) and their RBAC actions, named as Azure's
resource-provider operations (``runtimeEnvironments`` ones follow the same pattern: the published
operations table predates them)."""

from __future__ import annotations

from armsim import schema as S
from armsim.automation import responses as r
from armsim.routing import Router

SUB = "/subscriptions/{subscriptionId}"
RG = SUB + "/resourceGroups/{resourceGroupName}"
ACCOUNTS = "/providers/Microsoft.Automation/automationAccounts"
AA = RG + ACCOUNTS + "/{automationAccountName}"
A = "Microsoft.Automation/automationAccounts"

_IDENTITY: S.Shape = {"type": str, "userAssignedIdentities": dict}
ACCOUNT = S.tracked({"sku": {"name": str}, "publicNetworkAccess": bool, "disableLocalAuth": bool,
                     "description": str}, identity=_IDENTITY)
ACCOUNT_PATCH: S.Shape = {"properties": {"sku": {"name": str}, "publicNetworkAccess": bool,
                                         "disableLocalAuth": bool, "description": str},
                          "identity": _IDENTITY, "tags": dict, "location": str}
RUNTIME_ENVIRONMENT = S.tracked({"runtime": {"language": str, "version": str}, "defaultPackages": dict,
                                 "description": str})
PACKAGE: S.Shape = {"properties": {"contentLink": {"uri": str, "version": str,
                                                   "contentHash": {"algorithm": str, "value": str}}},
                    "tags": dict}
RUNBOOK = S.tracked({"runbookType": str, "runtimeEnvironment": str, "logVerbose": bool, "logProgress": bool,
                     "logActivityTrace": int, "description": str, "draft": dict, "publishContentLink": dict})
SCHEDULE: S.Shape = {"name": str, "properties": {"startTime": str, "expiryTime": str, "frequency": str,
                                                 "timeZone": str, "description": str, "advancedSchedule": dict,
                                                 "isEnabled": bool}}
JOB_SCHEDULE: S.Shape = {"properties": {"schedule": {"name": str}, "runbook": {"name": str}, "runOn": str,
                                        "parameters": dict}}
JOB: S.Shape = {"properties": {"runbook": {"name": str}, "parameters": dict, "runOn": str}}
VARIABLE: S.Shape = {"name": str, "properties": {"value": str, "description": str, "isEncrypted": bool}}


def register(router: Router) -> None:
    add = router.add
    add("PUT", AA, r.put_account, f"{A}/write", schema=ACCOUNT)
    add("PATCH", AA, r.patch_account, f"{A}/write", schema=ACCOUNT_PATCH)
    add("GET", AA, r.get_account, f"{A}/read")
    add("DELETE", AA, r.delete_account, f"{A}/delete")
    add("GET", RG + ACCOUNTS, r.list_accounts, f"{A}/read")
    add("GET", SUB + ACCOUNTS, r.list_accounts, f"{A}/read")

    env = AA + "/runtimeEnvironments/{runtimeEnvironmentName}"
    add("PUT", env, r.put_runtime_environment, f"{A}/runtimeEnvironments/write", schema=RUNTIME_ENVIRONMENT)
    add("PATCH", env, r.patch_runtime_environment, f"{A}/runtimeEnvironments/write", schema=RUNTIME_ENVIRONMENT)
    add("GET", env, r.get_runtime_environment, f"{A}/runtimeEnvironments/read")
    add("DELETE", env, r.delete_runtime_environment, f"{A}/runtimeEnvironments/delete")
    add("GET", AA + "/runtimeEnvironments", r.list_runtime_environments, f"{A}/runtimeEnvironments/read")
    pkg = env + "/packages/{packageName}"
    add("PUT", pkg, r.put_package, f"{A}/runtimeEnvironments/packages/write", schema=PACKAGE)
    add("GET", pkg, r.get_package, f"{A}/runtimeEnvironments/packages/read")
    add("DELETE", pkg, r.delete_package, f"{A}/runtimeEnvironments/packages/delete")
    add("GET", env + "/packages", r.list_packages, f"{A}/runtimeEnvironments/packages/read")

    rb = AA + "/runbooks/{runbookName}"
    add("PUT", rb, r.put_runbook, f"{A}/runbooks/write", schema=RUNBOOK)
    add("PATCH", rb, r.patch_runbook, f"{A}/runbooks/write", schema=RUNBOOK)
    add("GET", rb, r.get_runbook, f"{A}/runbooks/read")
    add("DELETE", rb, r.delete_runbook, f"{A}/runbooks/delete")
    add("GET", AA + "/runbooks", r.list_runbooks, f"{A}/runbooks/read")
    add("GET", rb + "/content", r.get_content, f"{A}/runbooks/content/read")
    add("GET", rb + "/draft", r.get_draft, f"{A}/runbooks/draft/read")
    add("PUT", rb + "/draft/content", r.replace_draft_content, f"{A}/runbooks/draft/content/write")
    add("GET", rb + "/draft/content", r.get_draft_content, f"{A}/runbooks/draft/read")
    add("GET", rb + "/draft/content/operationResults/{operationId}", r.operation_result,
        f"{A}/runbooks/draft/operationResults/read", lro_poll=True)
    add("POST", rb + "/draft/undoEdit", r.undo_edit, f"{A}/runbooks/draft/undoEdit/action")
    add("POST", rb + "/publish", r.publish, f"{A}/runbooks/publish/action")
    add("GET", rb + "/publish/operationResults/{operationId}", r.operation_result,
        f"{A}/runbooks/draft/operationResults/read", lro_poll=True)

    sched = AA + "/schedules/{scheduleName}"
    add("PUT", sched, r.put_schedule, f"{A}/schedules/write", schema=SCHEDULE)
    add("PATCH", sched, r.patch_schedule, f"{A}/schedules/write", schema=SCHEDULE)
    add("GET", sched, r.get_schedule, f"{A}/schedules/read")
    add("DELETE", sched, r.delete_schedule, f"{A}/schedules/delete")
    add("GET", AA + "/schedules", r.list_schedules, f"{A}/schedules/read")

    js = AA + "/jobSchedules/{jobScheduleId}"
    add("PUT", js, r.put_job_schedule, f"{A}/jobSchedules/write", schema=JOB_SCHEDULE)
    add("GET", js, r.get_job_schedule, f"{A}/jobSchedules/read")
    add("DELETE", js, r.delete_job_schedule, f"{A}/jobSchedules/delete")
    add("GET", AA + "/jobSchedules", r.list_job_schedules, f"{A}/jobSchedules/read")

    job = AA + "/jobs/{jobName}"
    add("PUT", job, r.put_job, f"{A}/jobs/write", schema=JOB)
    add("GET", job, r.get_job, f"{A}/jobs/read")
    add("GET", AA + "/jobs", r.list_jobs, f"{A}/jobs/read")
    add("GET", job + "/output", r.get_job_output, f"{A}/jobs/output/read")
    add("GET", job + "/runbookContent", r.get_job_runbook_content, f"{A}/jobs/runbookContent/action", "read")
    add("POST", job + "/stop", r.stop_job, f"{A}/jobs/stop/action")
    add("GET", job + "/streams", r.list_job_streams, f"{A}/jobs/streams/read")
    add("GET", job + "/streams/{jobStreamId}", r.get_job_stream, f"{A}/jobs/streams/read")

    var = AA + "/variables/{variableName}"
    add("PUT", var, r.put_variable, f"{A}/variables/write", schema=VARIABLE)
    add("PATCH", var, r.patch_variable, f"{A}/variables/write", schema=VARIABLE)
    add("GET", var, r.get_variable, f"{A}/variables/read")
    add("DELETE", var, r.delete_variable, f"{A}/variables/delete")
    add("GET", AA + "/variables", r.list_variables, f"{A}/variables/read")
