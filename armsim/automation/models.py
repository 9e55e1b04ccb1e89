"""Microsoft.Automation state and rules (api-version 2024-10-23; azure-automation.md §5-§9, §12): automation
accounts with managed identities, Python 3.10 runtime environments and their wheel packages, runbooks
(New → Published → Edit), schedules, job schedules, jobs with their streams, and variables.

Jobs are run by ``armsim.automation.sandbox``; this module only keeps their state. Package wheels live in
the sandbox's package store (the ArmSim workdir), never in the saved JSON state.
"""

from __future__ import annotations

import calendar
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from armsim.automation import exceptions as E
from armsim.errors import BadRequest, InvalidFilter, InvalidParameter
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.state import Subscription

NS = "Microsoft.Automation"
ACCOUNT_TYPE = "Microsoft.Automation/AutomationAccounts"
TERMINAL = ("Completed", "Failed", "Stopped")
STREAM_TYPES = ("Progress", "Output", "Warning", "Error", "Debug", "Verbose")
FREQUENCIES = ("OneTime", "Day", "Hour", "Week", "Month", "Minute")
IDENTITY_TYPES = {"none": "None", "systemassigned": "SystemAssigned", "userassigned": "UserAssigned",
                  "systemassigned,userassigned": "SystemAssigned, UserAssigned"}
RE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
UAMI_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.managedidentity/"
                     r"userassignedidentities/[^/]+$", re.IGNORECASE)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
MAX_PARAMETERS = 50
MAX_PARAMETER_BYTES = 512 * 1024
MAX_VARIABLE_CHARS = 1_048_576
NEVER_EXPIRES = "9999-12-31T23:59:59.9999999+00:00"
DOTNET_EPOCH_TICKS = 621_355_968_000_000_000  # .NET ticks (100 ns since 0001-01-01) at the Unix epoch


def stamp(t: float) -> str:
    """Automation's timestamp style: ``2018-02-01T05:53:30.243+00:00``."""
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")


def ticks(t: float) -> int:
    return DOTNET_EPOCH_TICKS + round(t * 10_000_000)


_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$",
                  re.IGNORECASE)


def parse_time(value: Any, target: str) -> datetime:
    """An ISO 8601 date-time (any number of fraction digits, ``Z`` or an offset; none = UTC), as UTC."""
    m = _ISO.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise InvalidParameter(f"The value '{value}' of '{target}' is not a valid date-time.", target=target)
    year, month, day, hour, minute = (int(m.group(i)) for i in range(1, 6))
    second = int(m.group(6) or 0)
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    try:
        t = datetime(year, month, day, hour, minute, second, micro, tzinfo=timezone.utc)
    except ValueError:
        raise InvalidParameter(f"The value '{value}' of '{target}' is not a valid date-time.", target=target) from None
    offset = m.group(8)
    if offset and offset.upper() != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        t -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return t


def _iso_minute(t: datetime) -> str:
    return t.replace(second=0, microsecond=0).isoformat()


def _add_months(t: datetime, months: int) -> datetime:
    month0 = t.month - 1 + months
    year, month = t.year + month0 // 12, month0 % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def next_run(start: datetime, frequency: str, interval: int, now: datetime,
             expiry: datetime | None) -> datetime | None:
    """The first occurrence at or after ``now`` (advancedSchedule and time zones are not applied)."""
    if frequency == "OneTime":
        t: datetime | None = start if start >= now else None
    elif start >= now:
        t = start
    elif frequency == "Month":
        k = max(0, (now.year - start.year) * 12 + now.month - start.month - 1) // interval * interval
        t = _add_months(start, k)
        while t < now:
            k += interval
            t = _add_months(start, k)
    else:
        step = {"Minute": timedelta(minutes=interval), "Hour": timedelta(hours=interval),
                "Day": timedelta(days=interval), "Week": timedelta(weeks=interval)}[frequency]
        count = -(-(now - start) // step)  # ceiling division of timedeltas
        t = start + count * step
    if t is not None and expiry is not None and t > expiry:
        return None
    return t


# --- $filter ----------------------------------------------------------------------------------------------
_CLAUSE = re.compile(r"^\s*([\w/]+)\s+(eq|ne|ge|gt|le|lt)\s+(?:'((?:[^']|'')*)'|(\S+))\s*$", re.IGNORECASE)


def parse_filter(expr: str | None) -> list[tuple[list[str], str, str]]:
    """OData clauses joined by ``and``: ``properties/streamType eq 'Output' and properties/time ge '…'``."""
    if not expr or not expr.strip():
        return []
    clauses = []
    for part in re.split(r"\s+and\s+", expr.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if m is None:
            raise InvalidFilter(f"Invalid $filter clause '{part}'.", target="$filter")
        value = m.group(3).replace("''", "'") if m.group(3) is not None else m.group(4)
        clauses.append((m.group(1).split("/"), m.group(2).lower(), value))
    return clauses


def matches(item: dict[str, Any], clauses: list[tuple[list[str], str, str]]) -> bool:
    for path, op, wanted in clauses:
        value: Any = item
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if path[-1] == "streamType" and wanted.lower() == "any":
            continue
        if op in ("eq", "ne"):
            same = str(value).lower() == wanted.lower() if value is not None else wanted.lower() == "null"
            if same != (op == "eq"):
                return False
            continue
        if value is None:
            return False
        try:
            left: Any = parse_time(value, "$filter")
            right: Any = parse_time(wanted, "$filter")
        except InvalidParameter:
            left, right = str(value), wanted
        ok = {"ge": left >= right, "gt": left > right, "le": left <= right, "lt": left < right}[op]
        if not ok:
            return False
    return True


# --- models -----------------------------------------------------------------------------------------------
@dataclass
class AutomationAccount:
    id: str
    name: str
    resource_group: str
    location: str
    created: float
    modified: float
    sku: dict[str, Any] = field(default_factory=lambda: {"name": "Basic"})
    tags: dict[str, str] = field(default_factory=dict)
    identity_type: str = "None"
    principal_id: str | None = None
    user_assigned: dict[str, dict[str, str]] = field(default_factory=dict)  # UAMI id → principalId, clientId
    settings: dict[str, Any] = field(default_factory=dict)  # publicNetworkAccess, disableLocalAuth, description…
    modified_by: str = ""
    etag: str = field(default_factory=lambda: f'W/"{uuid.uuid4()}"')

    @property
    def system_assigned(self) -> bool:
        return "SystemAssigned" in self.identity_type

    def to_dict(self, tenant: str) -> dict[str, Any]:
        props: dict[str, Any] = {"sku": dict(self.sku), "state": "Ok", "creationTime": stamp(self.created),
                                 "lastModifiedTime": stamp(self.modified), "lastModifiedBy": self.modified_by,
                                 "encryption": {"keySource": "Microsoft.Automation", "identity": {}},
                                 **self.settings}
        out: dict[str, Any] = {"id": self.id, "name": self.name, "type": ACCOUNT_TYPE, "location": self.location,
                               "tags": dict(self.tags), "etag": self.etag, "properties": props}
        if self.identity_type != "None":
            identity: dict[str, Any] = {"type": self.identity_type}
            if self.system_assigned:
                identity.update(principalId=self.principal_id, tenantId=tenant)
            if self.user_assigned:
                identity["userAssignedIdentities"] = {k: dict(v) for k, v in self.user_assigned.items()}
            out["identity"] = identity
        return out


@dataclass
class RuntimeEnvironment:
    id: str
    name: str
    account_id: str
    location: str
    language: str
    version: str
    created: float
    modified: float
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {"runtime": {"language": self.language, "version": self.version}}
        if self.description:
            props["description"] = self.description
        return {"id": self.id, "name": self.name, "type": "Microsoft.Automation/automationAccounts/runtimeEnvironments",
                "location": self.location, "tags": dict(self.tags),
                "systemData": {"createdAt": stamp(self.created), "lastModifiedAt": stamp(self.modified)},
                "properties": props}


@dataclass
class Package:
    """A wheel imported into a runtime environment. ``Creating`` until armsim fetched and checked the
    contentLink and the import latency passed (and a client saw ``Creating`` at least once)."""

    id: str
    name: str
    re_id: str
    location: str
    content_link: dict[str, Any]
    created: float
    modified: float
    ready_at: float
    provisioning_state: str = "Creating"
    error: dict[str, str] | None = None
    size_in_bytes: int = 0
    fetched: dict[str, Any] | None = None  # the download's outcome: {"error": …} or {"file", "sha256", "size"}
    polls: int = 0
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        return unquote(str(self.content_link.get("uri", "")).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1])

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {"default": False, "version": self.content_link.get("version"),
                                 "sizeInBytes": self.size_in_bytes, "provisioningState": self.provisioning_state,
                                 "contentLink": dict(self.content_link)}
        if self.error:
            props["error"] = dict(self.error)
        return {"id": self.id, "name": self.name,
                "type": "Microsoft.Automation/automationAccounts/runtimeEnvironments/packages",
                "location": self.location, "tags": dict(self.tags),
                "systemData": {"createdAt": stamp(self.created), "lastModifiedAt": stamp(self.modified)},
                "properties": props}


@dataclass
class Runbook:
    id: str
    name: str
    account_id: str
    location: str
    runbook_type: str
    runtime_environment: str
    created: float
    modified: float
    state: str = "New"  # New → (publish) Published → (draft edit) Edit → (publish) Published
    log_verbose: bool = False
    log_progress: bool = False
    log_activity_trace: int = 0
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    draft_content: str | None = None
    published_content: str | None = None
    draft_created: float | None = None
    draft_modified: float | None = None
    in_edit: bool = False
    job_count: int = 0
    modified_by: str = ""
    etag: str = field(default_factory=lambda: f'"{uuid.uuid4().int % 10**18}"')

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "runbookType": self.runbook_type, "runtimeEnvironment": self.runtime_environment, "state": self.state,
            "logVerbose": self.log_verbose, "logProgress": self.log_progress,
            "logActivityTrace": self.log_activity_trace, "jobCount": self.job_count, "parameters": {},
            "outputTypes": [], "provisioningState": "Succeeded", "creationTime": stamp(self.created),
            "lastModifiedTime": stamp(self.modified), "lastModifiedBy": self.modified_by,
        }
        if self.description is not None:
            props["description"] = self.description
        return {"id": self.id, "name": self.name, "type": "Microsoft.Automation/AutomationAccounts/Runbooks",
                "location": self.location, "tags": dict(self.tags), "etag": self.etag, "properties": props}

    def draft_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"inEdit": self.in_edit, "parameters": {}, "outputTypes": []}
        if self.draft_created is not None:
            out["creationTime"] = stamp(self.draft_created)
        if self.draft_modified is not None:
            out["lastModifiedTime"] = stamp(self.draft_modified)
        return out


@dataclass
class Schedule:
    id: str
    name: str
    account_id: str
    start_time: str  # ISO, truncated to the minute, UTC
    frequency: str
    created: float
    modified: float
    interval: int | None = None
    expiry_time: str | None = None
    time_zone: str = "UTC"
    description: str | None = None
    advanced_schedule: dict[str, Any] | None = None
    is_enabled: bool = True

    def next_run(self, now: float) -> datetime | None:
        if not self.is_enabled:
            return None
        expiry = parse_time(self.expiry_time, "expiryTime") if self.expiry_time else None
        return next_run(parse_time(self.start_time, "startTime"), self.frequency, self.interval or 1,
                        datetime.fromtimestamp(now, tz=timezone.utc), expiry)

    def to_dict(self, now: float) -> dict[str, Any]:
        upcoming = self.next_run(now)
        props: dict[str, Any] = {
            "startTime": self.start_time, "startTimeOffsetMinutes": 0.0,
            "expiryTime": self.expiry_time or NEVER_EXPIRES, "expiryTimeOffsetMinutes": 0.0,
            "isEnabled": self.is_enabled, "nextRun": upcoming.isoformat() if upcoming else None,
            "nextRunOffsetMinutes": 0.0, "interval": self.interval, "frequency": self.frequency,
            "timeZone": self.time_zone, "advancedSchedule": self.advanced_schedule,
            "creationTime": stamp(self.created), "lastModifiedTime": stamp(self.modified),
            "description": self.description,
        }
        return {"id": self.id, "name": self.name, "properties": props}


@dataclass
class JobSchedule:
    id: str
    job_schedule_id: str
    account_id: str
    schedule_name: str
    runbook_name: str
    run_on: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    fired_until: str | None = None  # the last occurrence the scheduler started a job for

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "properties": {
            "jobScheduleId": self.job_schedule_id, "runbook": {"name": self.runbook_name},
            "schedule": {"name": self.schedule_name}, "runOn": self.run_on, "parameters": dict(self.parameters)}}


@dataclass
class Job:
    id: str
    name: str
    job_id: str
    account_id: str
    runbook_name: str
    runtime_environment: str
    content: str  # the published script at job creation (GET …/runbookContent)
    created: float
    log_verbose: bool = False
    parameters: dict[str, str] = field(default_factory=dict)
    run_on: str = ""
    started_by: str = ""
    status: str = "New"
    status_details: str = "None"
    provisioning_state: str = "Processing"
    exception: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    modified: float = 0.0
    status_modified: float = 0.0
    streams: list[dict[str, Any]] = field(default_factory=list)  # {"id", "time", "type", "text"}

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def set_status(self, status: str, now: float) -> None:
        self.status, self.modified, self.status_modified = status, now, now

    def add_stream(self, stream_type: str, text: str, now: float) -> None:
        seq = len(self.streams) + 1
        self.streams.append({"id": f"{self.job_id}_{ticks(now):020d}_{seq:020d}", "time": now,
                             "type": stream_type, "text": text})
        self.modified = now

    def _common(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "runbook": {"name": self.runbook_name}, "startedBy": self.started_by,
                "runOn": self.run_on, "provisioningState": self.provisioning_state,
                "jobRuntimeEnvironment": {"runtimeEnvironmentName": self.runtime_environment},
                "creationTime": stamp(self.created), "status": self.status,
                "startTime": stamp(self.start_time) if self.start_time else None,
                "endTime": stamp(self.end_time) if self.end_time else None,
                "lastModifiedTime": stamp(self.modified or self.created)}

    def to_dict(self) -> dict[str, Any]:
        props = {**self._common(), "statusDetails": self.status_details, "exception": self.exception,
                 "lastStatusModifiedTime": stamp(self.status_modified or self.created),
                 "parameters": dict(self.parameters)}
        return {"id": self.id, "name": self.name, "type": "Microsoft.Automation/AutomationAccounts/Jobs",
                "properties": props}

    def list_item(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": "Microsoft.Automation/AutomationAccounts/Jobs",
                "properties": self._common()}

    def stream_summary(self, s: dict[str, Any]) -> dict[str, Any]:
        text = s["text"]
        return {"id": f"{self.id}/streams/{s['id']}", "properties": {
            "jobStreamId": s["id"], "time": stamp(s["time"]), "streamType": s["type"],
            "summary": text if len(text) <= 255 else text[:252] + "..."}}

    def stream_dict(self, s: dict[str, Any]) -> dict[str, Any]:
        out = self.stream_summary(s)
        out["properties"].update(streamText=s["text"], value={})
        return out

    def output(self) -> str:
        return "\n".join(s["text"] for s in self.streams if s["type"] == "Output")


@dataclass
class Variable:
    id: str
    name: str
    account_id: str
    created: float
    modified: float
    value: str | None = None  # JSON-encoded, as on the wire
    is_encrypted: bool = False
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {"creationTime": stamp(self.created), "lastModifiedTime": stamp(self.modified),
                                 "isEncrypted": self.is_encrypted, "description": self.description}
        if not self.is_encrypted:
            props["value"] = self.value
        return {"id": self.id, "name": self.name, "properties": props}


def _uami_ids(uami_id: str) -> dict[str, str]:
    """Stable principal and client ids for a user-assigned identity (armsim has no ManagedIdentity RP)."""
    key = uami_id.lower()
    return {"principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"armsim:uami-principal:{key}")),
            "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"armsim:uami-client:{key}"))}


def _bool(value: Any, target: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidParameter(f"The value of '{target}' must be a boolean.", target=target)
    return value


def _str_map(value: Any, target: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter(f"'{target}' must be an object of string values.", target=target)
    return dict(value)


class AutomationState(Collections):
    """All Microsoft.Automation resources of one subscription, keyed by lower-cased resource id."""

    MODELS = {"accounts": AutomationAccount, "runtime_environments": RuntimeEnvironment, "packages": Package,
              "runbooks": Runbook, "schedules": Schedule, "job_schedules": JobSchedule, "jobs": Job,
              "variables": Variable}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.accounts: dict[str, AutomationAccount] = {}
        self.runtime_environments: dict[str, RuntimeEnvironment] = {}
        self.packages: dict[str, Package] = {}
        self.runbooks: dict[str, Runbook] = {}
        self.schedules: dict[str, Schedule] = {}
        self.job_schedules: dict[str, JobSchedule] = {}
        self.jobs: dict[str, Job] = {}
        self.variables: dict[str, Variable] = {}

    def now(self) -> float:
        return self.sub.world.clock()

    # --- accounts -----------------------------------------------------------------------------------
    def account_id(self, rg: str, name: str) -> str:
        return f"{self.sub.rg(rg).id}/providers/{NS}/automationAccounts/{name}"

    def account(self, rg: str, name: str, *, parent: bool = False) -> AutomationAccount:
        acct = self.accounts.get(self.account_id(rg, name).lower())
        if acct is None:
            raise E.parent_not_found(name) if parent else E.account_not_found(name, rg)
        return acct

    def accounts_in(self, rg: str | None) -> list[AutomationAccount]:
        if rg is not None:
            prefix = self.sub.rg(rg).id.lower() + "/"
            return sorted((a for k, a in self.accounts.items() if k.startswith(prefix)), key=lambda a: a.id.lower())
        return sorted(self.accounts.values(), key=lambda a: a.id.lower())

    def put_account(self, rg: str, name: str, body: dict[str, Any], caller: str) -> tuple[AutomationAccount, bool]:
        rid = self.account_id(rg, name)
        existing = self.accounts.get(rid.lower())
        location = body.get("location") or (existing.location if existing else None)
        if not location:
            raise InvalidParameter("Required parameter 'location' is missing (null).", target="location")
        now = self.now()
        acct = existing or AutomationAccount(rid, name, self.sub.rg(rg).name, location, created=now, modified=now)
        props = body.get("properties") or {}
        self._account_settings(acct, props)
        acct.tags = _str_map(body.get("tags"), "tags")
        if "identity" in body:
            self._identity(acct, body.get("identity"), patch=False)
        acct.modified, acct.modified_by, acct.etag = now, caller, f'W/"{uuid.uuid4()}"'
        self.accounts[rid.lower()] = acct
        return acct, existing is None

    def patch_account(self, acct: AutomationAccount, body: dict[str, Any], caller: str) -> AutomationAccount:
        self._account_settings(acct, body.get("properties") or {})
        if "tags" in body:
            acct.tags = _str_map(body.get("tags"), "tags")
        if "identity" in body:
            self._identity(acct, body.get("identity"), patch=True)
        acct.modified, acct.modified_by, acct.etag = self.now(), caller, f'W/"{uuid.uuid4()}"'
        return acct

    @staticmethod
    def _account_settings(acct: AutomationAccount, props: dict[str, Any]) -> None:
        sku = props.get("sku")
        if sku is not None:
            if not isinstance(sku, dict) or str(sku.get("name", "")).lower() not in ("free", "basic"):
                raise InvalidParameter("sku.name must be 'Free' or 'Basic'.", target="properties.sku.name")
            acct.sku = {**sku, "name": "Free" if str(sku["name"]).lower() == "free" else "Basic"}
        for key, kind in (("publicNetworkAccess", bool), ("disableLocalAuth", bool), ("description", str)):
            if props.get(key) is not None:
                if not isinstance(props[key], kind):
                    raise InvalidParameter(f"The value of '{key}' has the wrong type.", target=f"properties.{key}")
                acct.settings[key] = props[key]

    def _identity(self, acct: AutomationAccount, identity: Any, *, patch: bool) -> None:
        if identity is None:
            identity = {"type": "None"}
        if not isinstance(identity, dict):
            raise InvalidParameter("'identity' must be an object.", target="identity")
        raw_type = identity.get("type") or ("None" if not patch else acct.identity_type)
        kind = IDENTITY_TYPES.get(str(raw_type).replace(" ", "").lower())
        if kind is None:
            raise BadRequest(f"Identity type '{raw_type}' is not supported; use None, SystemAssigned, "
                             "UserAssigned or 'SystemAssigned, UserAssigned'.", target="identity.type")
        requested = identity.get("userAssignedIdentities")
        if requested is not None and not isinstance(requested, dict):
            raise InvalidParameter("'identity.userAssignedIdentities' must be an object.",
                                   target="identity.userAssignedIdentities")
        uamis = dict(acct.user_assigned) if patch else {}
        for uami_id, value in (requested or {}).items():
            if not UAMI_ID.match(uami_id):
                raise BadRequest(f"Invalid user-assigned identity id '{uami_id}'; expected /subscriptions/{{s}}/"
                                 "resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/"
                                 "{name}.", target="identity.userAssignedIdentities")
            key = next((k for k in uamis if k.lower() == uami_id.lower()), uami_id)
            if value is None:  # PATCH {"<id>": null} removes it
                uamis.pop(key, None)
            else:
                uamis[key] = _uami_ids(uami_id)
        if "UserAssigned" in kind and not uamis:
            raise BadRequest("Identity type 'UserAssigned' needs at least one entry in userAssignedIdentities.",
                             target="identity.userAssignedIdentities")
        if "UserAssigned" not in kind and requested:
            raise BadRequest(f"userAssignedIdentities is only allowed with identity type 'UserAssigned', not "
                             f"'{kind}'.", target="identity.userAssignedIdentities")
        if "SystemAssigned" in kind and acct.principal_id is None:
            acct.principal_id = str(uuid.uuid4())
        elif "SystemAssigned" not in kind:
            acct.principal_id = None  # disabling drops the principal; enabling again creates a new one
        acct.identity_type = kind
        acct.user_assigned = uamis if "UserAssigned" in kind else {}

    def delete_account(self, acct: AutomationAccount) -> list[Job]:
        """Remove the account and everything under it; returns its jobs (so running ones can be stopped)."""
        prefix = acct.id.lower() + "/"
        jobs = [j for k, j in self.jobs.items() if k.startswith(prefix)]
        for table in (self.runtime_environments, self.packages, self.runbooks, self.schedules, self.job_schedules,
                      self.jobs, self.variables):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]
        del self.accounts[acct.id.lower()]
        return jobs

    @staticmethod
    def children(table: dict[str, Any], parent_id: str, segment: str) -> list[Any]:
        prefix = f"{parent_id}/{segment}/".lower()
        return sorted((v for k, v in table.items() if k.startswith(prefix) and "/" not in k[len(prefix):]),
                      key=lambda v: v.id.lower())

    @staticmethod
    def child(table: dict[str, Any], parent_id: str, segment: str, name: str, kind: str) -> Any:
        item = table.get(f"{parent_id}/{segment}/{name}".lower())
        if item is None:
            raise E.not_found(kind, name)
        return item

    # --- runtime environments and packages ----------------------------------------------------------
    def put_runtime_environment(self, acct: AutomationAccount, name: str,
                                body: dict[str, Any]) -> tuple[RuntimeEnvironment, bool]:
        if name.lower() in (n.lower() for n in E.SYSTEM_RUNTIME_ENVIRONMENTS):
            raise E.system_runtime_environment(name)
        if not RE_NAME.match(name):
            raise E.invalid_runtime_environment_name(name)
        rid = f"{acct.id}/runtimeEnvironments/{name}"
        existing = self.runtime_environments.get(rid.lower())
        props = body.get("properties") or {}
        runtime = props.get("runtime") or {}
        language, version = runtime.get("language"), runtime.get("version")
        if existing is not None and runtime:
            if str(language).lower() != existing.language.lower() or str(version) != existing.version:
                raise E.runtime_immutable()
        elif existing is None and (str(language).lower() != "python" or str(version) != "3.10"):
            raise E.unsupported_runtime(language, version)
        if props.get("defaultPackages"):
            raise BadRequest("Python runtime environments have no default packages; import wheels as packages.",
                             target="properties.defaultPackages")
        now = self.now()
        env = existing or RuntimeEnvironment(rid, name, acct.id, body.get("location") or acct.location, "Python",
                                             "3.10", created=now, modified=now)
        env.description = props.get("description", env.description)
        env.tags = _str_map(body.get("tags"), "tags") if "tags" in body else env.tags
        env.modified = now
        self.runtime_environments[rid.lower()] = env
        return env, existing is None

    def patch_runtime_environment(self, env: RuntimeEnvironment, body: dict[str, Any]) -> RuntimeEnvironment:
        props = body.get("properties") or {}
        runtime = props.get("runtime")
        if runtime and (str(runtime.get("language", env.language)).lower() != env.language.lower()
                        or str(runtime.get("version", env.version)) != env.version):
            raise E.runtime_immutable()
        if props.get("defaultPackages"):
            raise BadRequest("Python runtime environments have no default packages; import wheels as packages.",
                             target="properties.defaultPackages")
        if "description" in props:
            env.description = props["description"]
        if "tags" in body:
            env.tags = _str_map(body.get("tags"), "tags")
        env.modified = self.now()
        return env

    def delete_runtime_environment(self, env: RuntimeEnvironment) -> None:
        prefix = env.id.lower() + "/"
        for key in [k for k in self.packages if k.startswith(prefix)]:
            del self.packages[key]
        del self.runtime_environments[env.id.lower()]

    def put_package(self, env: RuntimeEnvironment, name: str, body: dict[str, Any],
                    import_seconds: float) -> tuple[Package, bool]:
        props = body.get("properties") or {}
        link = props.get("contentLink")
        if not isinstance(link, dict) or not isinstance(link.get("uri"), str) or not link["uri"]:
            raise InvalidParameter("Required parameter 'properties.contentLink.uri' is missing.",
                                   target="properties.contentLink.uri")
        if not re.match(r"^https?://", link["uri"], re.IGNORECASE):
            raise BadRequest(f"contentLink.uri '{link['uri']}' must be an http or https URL.",
                             target="properties.contentLink.uri")
        content_hash = link.get("contentHash")
        if content_hash is not None and (not isinstance(content_hash, dict) or not isinstance(
                content_hash.get("value"), str) or not isinstance(content_hash.get("algorithm"), str)):
            raise InvalidParameter("contentLink.contentHash needs string 'algorithm' and 'value'.",
                                   target="properties.contentLink.contentHash")
        rid = f"{env.id}/packages/{name}"
        existing = self.packages.get(rid.lower())
        now = self.now()
        clean = {k: link[k] for k in ("uri", "contentHash", "version") if link.get(k) is not None}
        pkg = Package(rid, name, env.id, env.location, clean, created=existing.created if existing else now,
                      modified=now, ready_at=now + import_seconds,
                      tags=_str_map(body.get("tags"), "tags"))
        self.packages[rid.lower()] = pkg
        return pkg, existing is None

    def packages_of(self, runtime_environment: str, account_id: str) -> list[Package]:
        return self.children(self.packages, f"{account_id}/runtimeEnvironments/{runtime_environment}", "packages")

    def runtime_environment_of(self, acct: AutomationAccount, name: str) -> RuntimeEnvironment | None:
        return self.runtime_environments.get(f"{acct.id}/runtimeEnvironments/{name}".lower())

    # --- runbooks -----------------------------------------------------------------------------------
    def put_runbook(self, acct: AutomationAccount, name: str, body: dict[str, Any],
                    caller: str) -> tuple[Runbook, bool]:
        rid = f"{acct.id}/runbooks/{name}"
        existing = self.runbooks.get(rid.lower())
        props = body.get("properties") or {}
        if props.get("publishContentLink"):
            raise BadRequest("publishContentLink is not emulated by armsim: replace the draft content and publish "
                             "it instead.", target="properties.publishContentLink")
        runbook_type = props.get("runbookType") or (existing.runbook_type if existing else None)
        if str(runbook_type).lower() != "python":
            raise E.unsupported_runbook_type(runbook_type)
        env_name = props.get("runtimeEnvironment") or (existing.runtime_environment if existing else None)
        if not isinstance(env_name, str) or not env_name:
            raise InvalidParameter("Runbooks of type 'Python' need properties.runtimeEnvironment.",
                                   target="properties.runtimeEnvironment")
        if env_name.lower() != "python-3.10" and self.runtime_environment_of(acct, env_name) is None:
            raise E.runtime_environment_missing(env_name, acct.name)
        now = self.now()
        rb = existing or Runbook(rid, name, acct.id, body.get("location") or acct.location, "Python", env_name,
                                 created=now, modified=now)
        rb.runtime_environment = env_name
        rb.log_verbose = _bool(props.get("logVerbose"), "logVerbose", rb.log_verbose)
        rb.log_progress = _bool(props.get("logProgress"), "logProgress", rb.log_progress)
        if isinstance(props.get("logActivityTrace"), int):
            rb.log_activity_trace = props["logActivityTrace"]
        if "description" in props:
            rb.description = props["description"]
        if "tags" in body:
            rb.tags = _str_map(body.get("tags"), "tags")
        if existing is None and props.get("draft") is not None:
            rb.draft_created = now
        rb.modified, rb.modified_by, rb.etag = now, caller, f'"{uuid.uuid4().int % 10**18}"'
        self.runbooks[rid.lower()] = rb
        return rb, existing is None

    def patch_runbook(self, rb: Runbook, body: dict[str, Any]) -> Runbook:
        props = body.get("properties") or {}
        rb.log_verbose = _bool(props.get("logVerbose"), "logVerbose", rb.log_verbose)
        rb.log_progress = _bool(props.get("logProgress"), "logProgress", rb.log_progress)
        if "description" in props:
            rb.description = props["description"]
        if "tags" in body:
            rb.tags = _str_map(body.get("tags"), "tags")
        rb.modified = self.now()
        return rb

    def replace_draft(self, rb: Runbook, content: str) -> None:
        now = self.now()
        rb.draft_content = content
        rb.draft_created = rb.draft_created or now
        rb.draft_modified = rb.modified = now
        rb.in_edit = True
        if rb.state == "Published":
            rb.state = "Edit"

    def publish(self, rb: Runbook) -> None:
        if rb.draft_content is None:
            raise E.no_draft(rb.name)
        rb.published_content = rb.draft_content
        rb.state, rb.in_edit = "Published", False
        rb.modified = self.now()

    def undo_edit(self, rb: Runbook) -> None:
        if rb.published_content is None:
            raise BadRequest(f"Runbook '{rb.name}' has never been published: there is no edit to undo.")
        rb.draft_content, rb.state, rb.in_edit = rb.published_content, "Published", False
        rb.draft_modified = rb.modified = self.now()

    def delete_runbook(self, rb: Runbook) -> None:
        for key, js in list(self.job_schedules.items()):
            if js.account_id.lower() == rb.account_id.lower() and js.runbook_name.lower() == rb.name.lower():
                del self.job_schedules[key]
        del self.runbooks[rb.id.lower()]

    # --- schedules and job schedules ----------------------------------------------------------------
    def put_schedule(self, acct: AutomationAccount, name: str, body: dict[str, Any]) -> tuple[Schedule, bool]:
        props = body.get("properties") or {}
        frequency = next((f for f in FREQUENCIES if f.lower() == str(props.get("frequency", "")).lower()), None)
        if frequency is None:
            raise InvalidParameter(f"Invalid frequency '{props.get('frequency')}'; use one of "
                                   f"{', '.join(FREQUENCIES)}.", target="properties.frequency")
        start = parse_time(props.get("startTime"), "properties.startTime")
        expiry = parse_time(props["expiryTime"], "properties.expiryTime") if props.get("expiryTime") else None
        interval = props.get("interval")
        if isinstance(interval, str) and interval.isdigit():
            interval = int(interval)
        if frequency != "OneTime" and (not isinstance(interval, int) or isinstance(interval, bool) or interval < 1):
            raise InvalidParameter("A recurring schedule needs an integer interval of at least 1.",
                                   target="properties.interval")
        if expiry is not None and expiry <= start:
            raise BadRequest("The expiry time of the schedule must be after its start time.",
                             target="properties.expiryTime")
        rid = f"{acct.id}/schedules/{name}"
        existing = self.schedules.get(rid.lower())
        now = self.now()
        sched = Schedule(rid, name, acct.id, _iso_minute(start), frequency, created=existing.created if existing
                         else now, modified=now, interval=interval if frequency != "OneTime" else None,
                         expiry_time=_iso_minute(expiry) if expiry else None,
                         time_zone=props.get("timeZone") or "UTC", description=props.get("description"),
                         advanced_schedule=props.get("advancedSchedule") or None)
        self.schedules[rid.lower()] = sched
        return sched, existing is None

    def patch_schedule(self, sched: Schedule, body: dict[str, Any]) -> Schedule:
        props = body.get("properties") or {}
        sched.is_enabled = _bool(props.get("isEnabled"), "isEnabled", sched.is_enabled)
        if "description" in props:
            sched.description = props["description"]
        sched.modified = self.now()
        return sched

    def delete_schedule(self, sched: Schedule) -> None:
        for key, js in list(self.job_schedules.items()):
            if js.account_id.lower() == sched.account_id.lower() and js.schedule_name.lower() == sched.name.lower():
                del self.job_schedules[key]
        del self.schedules[sched.id.lower()]

    def create_job_schedule(self, acct: AutomationAccount, job_schedule_id: str, body: dict[str, Any]) -> JobSchedule:
        if not GUID.match(job_schedule_id):
            raise BadRequest(f"Invalid job schedule id '{job_schedule_id}': it must be a GUID.")
        props = body.get("properties") or {}
        runbook = str((props.get("runbook") or {}).get("name") or "")
        schedule = str((props.get("schedule") or {}).get("name") or "")
        if not runbook or not schedule:
            raise InvalidParameter("properties.runbook.name and properties.schedule.name are required.",
                                   target="properties")
        rid = f"{acct.id}/jobSchedules/{job_schedule_id}"
        if rid.lower() in self.job_schedules:
            raise E.job_schedule_id_exists()
        for js in self.children(self.job_schedules, acct.id, "jobSchedules"):
            if js.runbook_name.lower() == runbook.lower() and js.schedule_name.lower() == schedule.lower():
                raise E.job_schedule_pair_exists()
        rb = self.child(self.runbooks, acct.id, "runbooks", runbook, "Runbook")
        sched = self.child(self.schedules, acct.id, "schedules", schedule, "Schedule")
        parameters = self._parameters(props.get("parameters"))
        run_on = props.get("runOn") or None
        if run_on:
            raise E.hybrid_worker(run_on)
        js = JobSchedule(rid, job_schedule_id.lower(), acct.id, sched.name, rb.name, None, parameters,
                         fired_until=datetime.fromtimestamp(self.now(), tz=timezone.utc).isoformat())
        self.job_schedules[rid.lower()] = js
        return js

    # --- jobs ---------------------------------------------------------------------------------------
    @staticmethod
    def _parameters(raw: Any) -> dict[str, str]:
        params = _str_map(raw, "properties.parameters")
        if len(params) > MAX_PARAMETERS:
            raise BadRequest(f"A job takes at most {MAX_PARAMETERS} parameters; got {len(params)}.",
                             target="properties.parameters")
        if len(json.dumps(params).encode()) > MAX_PARAMETER_BYTES:
            raise BadRequest("Job parameters exceed 512 KB.", target="properties.parameters")
        return params

    def create_job(self, acct: AutomationAccount, name: str, body: dict[str, Any], started_by: str) -> Job:
        rid = f"{acct.id}/jobs/{name}"
        if rid.lower() in self.jobs:
            raise E.job_exists(name)
        props = body.get("properties") or {}
        runbook = str((props.get("runbook") or {}).get("name") or "")
        if not runbook:
            raise InvalidParameter("Required parameter 'properties.runbook.name' is missing.",
                                   target="properties.runbook.name")
        rb: Runbook = self.child(self.runbooks, acct.id, "runbooks", runbook, "Runbook")
        if rb.published_content is None:
            raise E.runbook_not_published(rb.name)
        run_on = props.get("runOn") or ""
        if run_on:
            raise E.hybrid_worker(run_on)
        now = self.now()
        job = Job(rid, name, str(uuid.uuid4()), acct.id, rb.name, rb.runtime_environment, rb.published_content,
                  created=now, log_verbose=rb.log_verbose, parameters=self._parameters(props.get("parameters")),
                  started_by=started_by, modified=now, status_modified=now)
        self.jobs[rid.lower()] = job
        rb.job_count += 1
        return job

    def job_by_key(self, key: str) -> Job | None:
        return self.jobs.get(key)

    # --- variables ----------------------------------------------------------------------------------
    def put_variable(self, acct: AutomationAccount, name: str, body: dict[str, Any]) -> tuple[Variable, bool]:
        props = body.get("properties") or {}
        value = props.get("value")
        if value is not None:
            if not isinstance(value, str):
                raise InvalidParameter("properties.value must be a JSON-encoded string.", target="properties.value")
            if len(value) > MAX_VARIABLE_CHARS:
                raise BadRequest("A variable value cannot exceed 1048576 characters.", target="properties.value")
            try:
                json.loads(value)
            except ValueError:
                raise BadRequest(f"Variable value {value[:40]!r} is not valid JSON; encode strings with quotes, "
                                 "e.g. '\"text\"'.", target="properties.value") from None
        rid = f"{acct.id}/variables/{name}"
        existing = self.variables.get(rid.lower())
        now = self.now()
        var = Variable(rid, name, acct.id, created=existing.created if existing else now, modified=now, value=value,
                       is_encrypted=_bool(props.get("isEncrypted"), "isEncrypted"),
                       description=props.get("description"))
        self.variables[rid.lower()] = var
        return var, existing is None
