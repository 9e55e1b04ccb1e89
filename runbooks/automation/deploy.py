"""Deploy the runbooks to an Azure Automation account with azure-mgmt-automation (api-version 2024-10-23).

Order: account (with a managed identity) → runtime environment (Python 3.10) → one package per wheel (polled
until Succeeded) → runbooks → draft content (202) → publish (202) → schedule → job schedule. Each resource is
read first and written only when it differs from what is wanted (expected vs actual), so a re-deploy changes
nothing. Job schedules cannot be updated: a different one is deleted and created anew.

The request bodies come from ``resources()``, which ``template.py`` also renders as an ARM template, so the
SDK deployment and the IaC one cannot drift apart.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from runbooks.automation.package import RUNBOOKS, WheelSet
from runbooks.azure import AZURE_ERRORS, call_failed
from runbooks.azure import as_json as _d
from runbooks.errors import ApplyFailed, UsageError

API_VERSION = "2024-10-23"
FREQUENCIES = {"hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
SWEEP_RUNBOOK = "Sweep-VMs"


@dataclass(frozen=True)
class ScheduleSpec:
    """``FREQUENCY[/INTERVAL][@HH:MM]`` in UTC, e.g. ``day@02:00``, ``hour/6``, ``week/1@03:30``."""

    frequency: str
    interval: int = 1
    at: str = "02:00"

    @classmethod
    def parse(cls, text: str) -> ScheduleSpec:
        body, _, at = text.strip().partition("@")
        freq, _, interval = body.partition("/")
        frequency = FREQUENCIES.get(freq.strip().lower())
        if frequency is None:
            raise UsageError(f"bad schedule '{text}': frequency must be one of {', '.join(FREQUENCIES)}")
        try:
            n = int(interval) if interval else 1
            hour, minute = (int(x) for x in (at or "02:00").split(":"))
        except ValueError:
            raise UsageError(f"bad schedule '{text}': use FREQUENCY[/INTERVAL][@HH:MM], e.g. day@02:00") from None
        if n < 1 or not (0 <= hour < 24 and 0 <= minute < 60):
            raise UsageError(f"bad schedule '{text}': interval must be ≥ 1 and the time a valid HH:MM (UTC)")
        return cls(frequency, n, f"{hour:02d}:{minute:02d}")

    def name(self) -> str:
        return f"rca-sweep-{self.frequency.lower()}-{self.interval}-{self.at.replace(':', '')}"

    def first_run(self, now: datetime) -> datetime:
        """The next HH:MM at least 10 minutes from now (the service wants a start time in the future)."""
        hour, minute = (int(x) for x in self.at.split(":"))
        start = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        while start < now + timedelta(minutes=10):
            start += timedelta(days=1)
        return start


@dataclass
class Settings:
    """What to deploy. ``wheels_url`` is where the built folder (wheels + ``runbooks/``) is served from; the
    service downloads every package from there. ``wheels_sas`` (a SAS query string) is a secret: it goes
    into the URIs sent to Azure and nowhere else."""

    location: str
    wheels_url: str
    runtime_environment: str = "rca-runbooks-py310"
    identity: str = "SystemAssigned"  # or a user-assigned identity's resource id
    schedule: ScheduleSpec | None = None
    sweep_parameters: dict[str, Any] = field(default_factory=dict)
    wheels_sas: str | None = None
    package_poll_timeout_s: float = 900.0
    imports_per_window: tuple[int, float] = (5, 30.0)  # the service's import rate limit: 5 per 30 s

    def uri(self, file: str) -> str:
        url = f"{self.wheels_url.rstrip('/')}/{file}"
        return f"{url}?{self.wheels_sas.lstrip('?')}" if self.wheels_sas else url


def _identity(settings: Settings) -> dict[str, Any]:
    if settings.identity == "SystemAssigned":
        return {"type": "SystemAssigned"}
    if settings.identity.lower().startswith("/subscriptions/") and "/userassignedidentities/" in \
            settings.identity.lower():
        return {"type": "UserAssigned", "userAssignedIdentities": {settings.identity: {}}}
    raise UsageError(f"identity must be SystemAssigned or a user-assigned identity's resource id "
                     f"(got {settings.identity})")


def package_name(wheel_name: str) -> str:
    """RE package names allow letters, digits, '-' and '_' (no dots)."""
    return wheel_name.replace(".", "_")


def resources(wheels: WheelSet, settings: Settings, *, content_uri: Callable[[str], str] | None = None
              ) -> list[dict[str, Any]]:
    """The deployment as data: ``{"kind", "name", "body"}`` in deploy order (bodies in REST JSON)."""
    uri = content_uri or settings.uri
    out: list[dict[str, Any]] = [
        {"kind": "account", "name": "", "body": {
            "location": settings.location, "identity": _identity(settings),
            "properties": {"sku": {"name": "Basic"}, "publicNetworkAccess": True, "disableLocalAuth": True}}},
        {"kind": "runtimeEnvironment", "name": settings.runtime_environment, "body": {
            "location": settings.location, "properties": {"runtime": {"language": "Python", "version":
                                                                      wheels.python_version}}}},
    ]
    for w in wheels.wheels:
        out.append({"kind": "package", "name": package_name(w.name), "body": {"properties": {"contentLink": {
            "uri": uri(w.file), "contentHash": {"algorithm": "sha256", "value": w.sha256.upper()},
            "version": w.version}}}})
    for script in wheels.scripts:
        description = RUNBOOKS[script.runbook][1]
        out.append({"kind": "runbook", "name": script.runbook, "body": {
            "location": settings.location, "properties": {
                "runbookType": "Python", "runtimeEnvironment": settings.runtime_environment, "logVerbose": False,
                "logProgress": False, "description": description}},
            "script": script})
    if settings.schedule is not None:
        spec = settings.schedule
        out.append({"kind": "schedule", "name": spec.name(), "body": {"name": spec.name(), "properties": {
            "frequency": spec.frequency, "interval": spec.interval, "timeZone": "UTC",
            "description": f"Sweep for VMs a playbook covers every {spec.interval} {spec.frequency.lower()}(s) at "
                           f"{spec.at} UTC"}}, "spec": spec})
        out.append({"kind": "jobSchedule", "name": "", "body": {"properties": {
            "schedule": {"name": spec.name()}, "runbook": {"name": SWEEP_RUNBOOK}, "runOn": "",
            "parameters": {"parameter": json.dumps(settings.sweep_parameters, separators=(",", ":"))}}}})
    return out


@dataclass
class DeployReport:
    changes: list[tuple[str, str]] = field(default_factory=list)  # (resource, created|updated|unchanged|…)
    principal_id: str | None = None

    def record(self, what: str, action: str, progress: Callable[[str], None]) -> None:
        self.changes.append((what, action))
        progress(f"  {action:<10} {what}")

    @property
    def writes(self) -> int:
        return sum(1 for _, action in self.changes if action != "unchanged")


def _get(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except ResourceNotFoundError:
        return None


def _norm(value: Any) -> Any:
    """Case-insensitive comparison of names and enum values ARM may echo in another case."""
    return json.dumps(value, sort_keys=True).lower()


def deploy(client: Any, resource_group: str, account: str, wheels: WheelSet, settings: Settings,
           progress: Callable[[str], None] = print) -> DeployReport:
    """Bring the account to the wanted state; returns what changed. Errors become ApplyFailed."""
    wheels.verify()
    try:
        return _deploy(client, resource_group, account, wheels, settings, progress)
    except AZURE_ERRORS as e:
        raise call_failed(e, f"deploy to {resource_group}/{account}") from e


def _deploy(client: Any, rg: str, account: str, wheels: WheelSet, settings: Settings,
            progress: Callable[[str], None]) -> DeployReport:
    report = DeployReport()
    items = resources(wheels, settings)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], []).append(item)

    # 1. account with its identity
    want = by_kind["account"][0]["body"]
    have = _d(_get(client.automation_account.get, rg, account))
    if have and _norm(have.get("identity", {}).get("type")) == _norm(want["identity"]["type"]) and _norm(
            have.get("location")) == _norm(want["location"]):
        report.record(f"account {account}", "unchanged", progress)
    else:
        have = _d(client.automation_account.create_or_update(rg, account, want))
        report.record(f"account {account}", "updated" if have else "created", progress)
    report.principal_id = have.get("identity", {}).get("principalId")

    # 2. runtime environment (language and version cannot change)
    re_item = by_kind["runtimeEnvironment"][0]
    have = _d(_get(client.runtime_environments.get, rg, account, re_item["name"]))
    want_runtime = re_item["body"]["properties"]["runtime"]
    if have:
        runtime = have.get("properties", {}).get("runtime", {})
        if _norm(runtime) != _norm(want_runtime):
            raise UsageError(f"runtime environment {re_item['name']} runs {runtime.get('language')} "
                             f"{runtime.get('version')}, not Python {want_runtime['version']}; a runtime cannot "
                             "change: deploy with another --runtime-environment name")
        report.record(f"runtime environment {re_item['name']}", "unchanged", progress)
    else:
        client.runtime_environments.create(rg, account, re_item["name"], re_item["body"])
        report.record(f"runtime environment {re_item['name']}", "created", progress)

    # 3. packages, paced within the service's import rate limit, then polled until each is Succeeded
    _deploy_packages(client, rg, account, re_item["name"], by_kind["package"], settings, report, progress)

    # 4-6. runbooks: create, replace draft content, publish — only where the published script differs
    for item in by_kind["runbook"]:
        name = item["name"]
        have = _d(_get(client.runbook.get, rg, account, name))
        props = have.get("properties", {})
        wanted = item["body"]["properties"]
        if not have or any(_norm(props.get(k)) != _norm(v) for k, v in wanted.items()):
            client.runbook.create_or_update(rg, account, name, {**item["body"], "properties": {**wanted,
                                                                                                "draft": {}}})
            report.record(f"runbook {name}", "updated" if have else "created", progress)
        text = wheels.script_text(name)
        published = None
        if str(props.get("state", "")).lower() == "published":
            published = _get(client.runbook.get_content, rg, account, name)
        if isinstance(published, bytes):
            published = published.decode()
        if published == text:
            report.record(f"runbook {name} content", "unchanged", progress)
            continue
        client.runbook_draft.begin_replace_content(rg, account, name, text).result()
        client.runbook.begin_publish(rg, account, name).result()
        report.record(f"runbook {name} content", "published", progress)

    # 7-8. schedule and its job schedule (immutable: delete and recreate when different)
    for item in by_kind.get("schedule", []):
        _deploy_schedule(client, rg, account, item, report, progress)
    for item in by_kind.get("jobSchedule", []):
        _deploy_job_schedule(client, rg, account, item["body"], report, progress)
    return report


def _deploy_packages(client: Any, rg: str, account: str, runtime: str, items: list[dict[str, Any]],
                     settings: Settings, report: DeployReport, progress: Callable[[str], None]) -> None:
    existing = {str(_d(p).get("name", "")).lower(): _d(p)
                for p in client.package.list_by_runtime_environment(rg, account, runtime)}
    per_window, window = settings.imports_per_window
    started: list[float] = []
    pending: list[str] = []
    for item in items:
        name = item["name"]
        have = existing.get(name.lower(), {})
        props = have.get("properties", {})
        have_hash = str(props.get("contentLink", {}).get("contentHash", {}).get("value", "")).lower()
        want_hash = item["body"]["properties"]["contentLink"]["contentHash"]["value"].lower()
        if have_hash == want_hash and props.get("provisioningState") == "Succeeded":
            report.record(f"package {name}", "unchanged", progress)
            continue
        if len(started) >= per_window:  # at most per_window imports in any window-long interval
            wait = started[-per_window] + window - time.monotonic()
            if wait > 0:
                progress(f"  (pausing {wait:.0f} s: the service accepts {per_window} imports per {window:.0f} s)")
                time.sleep(wait)
        started.append(time.monotonic())
        client.package.create_or_update(rg, account, runtime, name, item["body"])
        pending.append(name)
        report.record(f"package {name}", "updated" if have else "created", progress)
    deadline = time.monotonic() + settings.package_poll_timeout_s
    pause = 0.2
    while pending:
        still = []
        for name in pending:
            props = _d(client.package.get(rg, account, runtime, name)).get("properties", {})
            state = str(props.get("provisioningState", ""))
            if state == "Failed":
                err = props.get("error") or {}
                raise ApplyFailed(f"package {name} failed to import: {err.get('code') or 'Failed'}: "
                                  f"{err.get('message') or 'no detail'}", code=err.get("code"))
            if state != "Succeeded":
                still.append(name)
        pending = still
        if pending:
            if time.monotonic() > deadline:
                raise ApplyFailed(f"packages still importing after {settings.package_poll_timeout_s:.0f} s: "
                                  f"{', '.join(pending)}; re-run the deploy to continue")
            time.sleep(pause)
            pause = min(pause * 2, 10.0)
    progress("  packages: all Succeeded")


def _deploy_schedule(client: Any, rg: str, account: str, item: dict[str, Any], report: DeployReport,
                     progress: Callable[[str], None]) -> None:
    name = item["name"]
    props = item["body"]["properties"]
    have = _d(_get(client.schedule.get, rg, account, name)).get("properties", {})
    if have and all(_norm(have.get(k)) == _norm(props[k]) for k in ("frequency", "interval")) and have.get(
            "isEnabled", True):
        report.record(f"schedule {name}", "unchanged", progress)
        return
    start = item["spec"].first_run(datetime.now(timezone.utc))
    body = {**item["body"], "properties": {**props, "startTime": start.isoformat()}}
    client.schedule.create_or_update(rg, account, name, body)
    report.record(f"schedule {name} (first run {start:%Y-%m-%d %H:%M} UTC)", "updated" if have else "created",
                  progress)


def _deploy_job_schedule(client: Any, rg: str, account: str, body: dict[str, Any], report: DeployReport,
                         progress: Callable[[str], None]) -> None:
    props = body["properties"]
    runbook, schedule = props["runbook"]["name"], props["schedule"]["name"]
    linked = [_d(js) for js in client.job_schedule.list_by_automation_account(rg, account)
              if _norm(_d(js).get("properties", {}).get("runbook", {}).get("name")) == _norm(runbook)]
    same = [js for js in linked if _norm(js.get("properties", {}).get("schedule", {}).get("name")) == _norm(schedule)
            and (js.get("properties", {}).get("parameters") or {}) == props["parameters"]
            and (js.get("properties", {}).get("runOn") or "") == props["runOn"]]
    if same and len(linked) == 1:
        report.record(f"job schedule {runbook} ← {schedule}", "unchanged", progress)
        return
    for js in linked:  # other schedules of this runbook, or this one with other parameters
        job_schedule_id = js.get("properties", {}).get("jobScheduleId") or str(js.get("name"))
        client.job_schedule.delete(rg, account, job_schedule_id)
        old = js.get("properties", {}).get("schedule", {}).get("name")
        report.record(f"job schedule {runbook} ← {old}", "deleted", progress)
    client.job_schedule.create(rg, account, str(uuid.uuid4()), body)
    report.record(f"job schedule {runbook} ← {schedule}", "created", progress)
