"""The deployment of ``deploy.py`` as an ARM template (JSON), for teams that deploy with IaC.

Bodies come from ``deploy.resources()``; only what a template expresses differently changes: names and the
location become parameters, content URIs are built from ``_artifactsLocation`` + ``_artifactsLocationSasToken``
(a ``securestring``, never in the file), and runbooks are published from ``publishContentLink`` instead of the
draft/publish calls. A job schedule is immutable: its name is a ``guid()`` of runbook, schedule and parameters,
so changed parameters make a new one — delete the old job schedule first (``invoke automation.deploy`` does).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from runbooks.automation.deploy import API_VERSION, Settings, resources
from runbooks.automation.package import WheelSet

SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
NS = "Microsoft.Automation/automationAccounts"


def _uri(file: str) -> str:
    return f"[concat(parameters('_artifactsLocation'), '/{file}', parameters('_artifactsLocationSasToken'))]"


def arm_template(wheels: WheelSet, settings: Settings, account: str) -> dict[str, Any]:
    templated = dataclasses.replace(settings, location="[parameters('location')]", wheels_sas=None)
    acct = "parameters('automationAccountName')"
    runtime = settings.runtime_environment
    account_id = f"[resourceId('{NS}', {acct})]"
    runtime_id = f"[resourceId('{NS}/runtimeEnvironments', {acct}, '{runtime}')]"
    out: list[dict[str, Any]] = []
    package_ids: list[str] = []
    for item in resources(wheels, templated, content_uri=_uri):
        kind, name, body = item["kind"], item["name"], dict(item["body"])
        res: dict[str, Any] = {"apiVersion": API_VERSION}
        if kind == "account":
            res.update(type=NS, name=f"[{acct}]", **body)
        elif kind == "runtimeEnvironment":
            res.update(type=f"{NS}/runtimeEnvironments", name=f"[concat({acct}, '/{name}')]",
                       dependsOn=[account_id], **body)
        elif kind == "package":
            res.update(type=f"{NS}/runtimeEnvironments/packages", name=f"[concat({acct}, '/{runtime}/{name}')]",
                       dependsOn=[runtime_id], **body)
            package_ids.append(f"[resourceId('{NS}/runtimeEnvironments/packages', {acct}, '{runtime}', '{name}')]")
        elif kind == "runbook":
            script = item["script"]
            props = {**body["properties"], "publishContentLink": {
                "uri": _uri(script.file), "contentHash": {"algorithm": "sha256", "value": script.sha256.upper()}}}
            res.update(type=f"{NS}/runbooks", name=f"[concat({acct}, '/{name}')]", location=body["location"],
                       properties=props, dependsOn=[runtime_id, *package_ids])
        elif kind == "schedule":
            props = {**body["properties"], "startTime": "[parameters('scheduleStartTime')]"}
            res.update(type=f"{NS}/schedules", name=f"[concat({acct}, '/{name}')]", properties=props,
                       dependsOn=[account_id])
        elif kind == "jobSchedule":
            props = body["properties"]
            runbook, schedule = props["runbook"]["name"], props["schedule"]["name"]
            key = json.dumps(props["parameters"], sort_keys=True).replace("'", "''")
            res.update(type=f"{NS}/jobSchedules",
                       name=f"[concat({acct}, '/', guid({acct}, '{runbook}', '{schedule}', '{key}'))]",
                       properties=props, dependsOn=[f"[resourceId('{NS}/runbooks', {acct}, '{runbook}')]",
                                                    f"[resourceId('{NS}/schedules', {acct}, '{schedule}')]"])
        out.append(res)
    parameters: dict[str, Any] = {
        "automationAccountName": {"type": "string", "defaultValue": account},
        "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
        "_artifactsLocation": {"type": "string", "defaultValue": settings.wheels_url.rstrip("/"),
                               "metadata": {"description": "where the wheel set (wheels + runbooks/) is served"}},
        "_artifactsLocationSasToken": {"type": "securestring", "defaultValue": "",
                                       "metadata": {"description": "SAS query string for _artifactsLocation"}},
    }
    if settings.schedule is not None:
        parameters["scheduleStartTime"] = {"type": "string", "defaultValue": "[dateTimeAdd(utcNow(), 'PT1H')]",
                                           "metadata": {"description": "first run, in the future (UTC)"}}
    return {"$schema": SCHEMA, "contentVersion": "1.0.0.0", "parameters": parameters, "resources": out,
            "outputs": {"principalId": {"type": "string", "value": f"[reference({account_id[1:-1]}, "
                                                                    f"'{API_VERSION}', 'full').identity.principalId]"}}}
