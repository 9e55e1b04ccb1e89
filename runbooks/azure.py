"""Azure access: where ARM is, how we authenticate, the SDK clients, and running one planned call.

Connection settings come from flags or the environment — ``RUNBOOKS_ARM_ENDPOINT``, ``RUNBOOKS_CA_BUNDLE``,
``AZURE_SUBSCRIPTION_ID`` — with public Azure as the default. Credentials come from azure-identity's
``DefaultAzureCredential`` (armsim's managed-identity endpoint makes it work unchanged).
Secret references (``env:NAME`` or a Key Vault secret URL) are parsed, resolved and kept out of every
output here; Key Vault is read with the same credential, through ``SecretClient``.
This is the only module that knows SDK method names; everything else speaks in ``Call`` values.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from runbooks.errors import ApplyFailed, SecretMissing, UsageError
from runbooks.pacing import ThrottlePacer
from runbooks.text import first_line

if TYPE_CHECKING:
    from runbooks.progress import Operation

PUBLIC_ARM = "https://management.azure.com"
# What an SDK call can fail with that a user can act on: ARM's answer, no connection, or a connection lost
# before the answer (azure-core retries no POST then: the call may or may not have taken effect).
# What an SDK call raises when ARM refuses it or cannot be reached; requests raises a plain OSError when the
# CA bundle it was given is gone (an emulator restarted with a new CA).
AZURE_ERRORS = (HttpResponseError, ServiceRequestError, ServiceResponseError, OSError)


@dataclass
class RequestCounter(SansIOHTTPPolicy):
    """Counts every HTTP attempt the SDK makes, as ARM reads (GET/HEAD) and writes (anything else)."""

    reads: int = 0
    writes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_request(self, request: PipelineRequest) -> None:
        with self.lock:
            if request.http_request.method in ("GET", "HEAD"):
                self.reads += 1
            else:
                self.writes += 1


MAX_RETRY_AFTER_ENV = "RUNBOOKS_MAX_RETRY_AFTER_S"
DEFAULT_MAX_RETRY_AFTER_S = 120.0
_RETRY_HEADERS = (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("Retry-After", 1.0))


def _retry_after_seconds(value: str, unit: float) -> float | None:
    """A Retry-After value in seconds (delta seconds, or an HTTP date for ``Retry-After``); None if garbage."""
    try:
        return max(0.0, float(value) * unit)
    except ValueError:
        pass
    if unit != 1.0:
        return None
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


class RetryAfterGuard(SansIOHTTPPolicy):
    """Never silent for long on ARM's say-so. A 429/503 whose Retry-After asks for more than ``max_s`` ends the
    call with one clear error (ApplyFailed, code TooManyRequests) instead of sleeping; a long-running operation's
    poll hint is capped at ``max_s``; a garbage hint is dropped (azure-core then backs off as usual)."""

    def __init__(self, max_s: float | None = None) -> None:
        raw = os.environ.get(MAX_RETRY_AFTER_ENV)
        try:
            self.max_s = float(max_s if max_s is not None else raw or DEFAULT_MAX_RETRY_AFTER_S)
        except ValueError:
            raise UsageError(f"{MAX_RETRY_AFTER_ENV} must be a number of seconds (got {raw!r})") from None

    def on_response(self, request: PipelineRequest, response: Any) -> None:
        headers = response.http_response.headers
        status = response.http_response.status_code
        for name, unit in _RETRY_HEADERS:
            raw = headers.get(name)
            if raw is None:
                continue
            seconds = _retry_after_seconds(str(raw).strip(), unit)
            if seconds is None:
                del headers[name]
            elif seconds > self.max_s and status in (429, 503):
                raise ApplyFailed(f"ARM answered {status} and asks to wait {seconds:g} s ({name}), more than "
                                  f"{self.max_s:g} s ({MAX_RETRY_AFTER_ENV}): stopped instead of waiting silently; "
                                  "re-run the same command later (finished work is kept)", code="TooManyRequests")
            elif seconds > self.max_s:
                headers[name] = str(int(self.max_s / unit))


POLL_INTERVAL_ENV = "RUNBOOKS_POLL_INTERVAL_S"
# Between polls of an operation whose answer gives no Retry-After (a VM PATCH often does not): azure-core would
# wait 30 s; an operator watching a resize wants to see it end within seconds of Azure finishing it.
DEFAULT_POLL_INTERVAL_S = 5.0


@dataclass
class Connection:
    """Where ARM is and which subscription to use."""

    subscription_id: str
    endpoint: str = PUBLIC_ARM
    ca_bundle: str | None = None
    polling_interval: float | None = None

    @classmethod
    def from_env(cls, *, endpoint: str | None = None, ca_bundle: str | None = None,
                 subscription: str | None = None) -> Connection:
        sub = subscription or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if not sub:
            raise UsageError("no subscription: pass --subscription or set AZURE_SUBSCRIPTION_ID")
        ca = ca_bundle or os.environ.get("RUNBOOKS_CA_BUNDLE") or None
        if ca and not os.path.isfile(ca):
            raise UsageError(f"CA bundle {ca} does not exist (from --ca-bundle or RUNBOOKS_CA_BUNDLE)")
        url = (endpoint or os.environ.get("RUNBOOKS_ARM_ENDPOINT") or PUBLIC_ARM).rstrip("/")
        if not url.startswith("https://"):
            raise UsageError(f"ARM endpoint must be https:// (got {url})")
        from runbooks.settings import positive_number

        return cls(sub, url, ca, positive_number(POLL_INTERVAL_ENV, DEFAULT_POLL_INTERVAL_S))


class Azure:
    """The SDK clients for one connection, sharing one credential and one request counter."""

    def __init__(self, conn: Connection, credential: Any = None) -> None:
        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        self.conn = conn
        self.counter = RequestCounter()
        self.pacer = ThrottlePacer()  # keeps every client of this connection within ARM's token buckets
        self.retry_guard = RetryAfterGuard()  # innermost: the pacer and the retry policy see its verdict
        kwargs: dict[str, Any] = {"base_url": conn.endpoint,
                                  "per_retry_policies": [self.counter, self.pacer, self.retry_guard],
                                  "credential_scopes": ["https://management.azure.com/.default"]}
        if conn.ca_bundle:
            kwargs["connection_verify"] = conn.ca_bundle
        if conn.polling_interval is not None:
            kwargs["polling_interval"] = conn.polling_interval
        self.credential, self.client_kwargs = credential, kwargs
        self._sdk_clients: dict[str, Any] = {}
        self._sdk_lock = threading.Lock()
        self._secret_clients: dict[str, Any] = {}

    def _sdk(self, module: str, name: str) -> Any:
        """The SDK client ``module.name`` on this connection, credential and counters, made on first use:
        importing azure.mgmt.network alone takes over a second, and most runs need only some clients."""
        client = self._sdk_clients.get(name)
        if client is None:
            with self._sdk_lock:  # facts are read by parallel threads: one client each, made once
                client = self._sdk_clients.get(name)
                if client is None:
                    cls = getattr(importlib.import_module(module), name)
                    client = cls(self.credential, self.conn.subscription_id, **self.client_kwargs)
                    self._sdk_clients[name] = client
        return client

    @property
    def compute(self) -> Any:
        return self._sdk("azure.mgmt.compute", "ComputeManagementClient")

    @property
    def network(self) -> Any:
        return self._sdk("azure.mgmt.network", "NetworkManagementClient")

    @property
    def locks(self) -> Any:
        return self._sdk("azure.mgmt.resource.locks", "ManagementLockClient")

    @property
    def monitor(self) -> Any:
        return self._sdk("azure.mgmt.monitor", "MonitorManagementClient")

    def automation(self) -> Any:
        """Azure Automation (accounts, runbooks, jobs)."""
        return self._sdk("azure.mgmt.automation", "AutomationClient")

    def health(self) -> Any:
        """Resource Health (availability statuses)."""
        return self._sdk("azure.mgmt.resourcehealth", "ResourceHealthMgmtClient")

    def resources(self) -> Any:
        """The generic resource client: resources the toolkit reads without an SDK of their own (storage
        accounts)."""
        return self._sdk("azure.mgmt.resource.resources", "ResourceManagementClient")

    def marketplace(self) -> Any:
        """MarketplaceOrdering (legal terms of Marketplace plans)."""
        return self._sdk("azure.mgmt.marketplaceordering", "MarketplaceOrderingAgreements")

    def client(self, name: str) -> Any:
        if name == "marketplace":
            return self.marketplace()
        return {"compute": self.compute, "network": self.network, "locks": self.locks}[name]

    def secret_client(self, vault_url: str) -> Any:
        """A Key Vault SecretClient for one vault on this connection's credential (made once per vault).
        A vault that is not Azure's own (armsim serves vaults under a path of its endpoint) is trusted
        through the connection's CA bundle, and its challenge names Key Vault's resource rather than its
        host, so the SDK's check that they match is off for it."""
        from azure.keyvault.secrets import SecretClient

        client = self._secret_clients.get(vault_url)
        if client is None:
            kwargs: dict[str, Any] = {"retry_total": 2}
            if not is_azure_vault(vault_url):
                # Only the emulator behind our own ARM endpoint: a foreign host could name any resource in its
                # challenge and receive a token for it.
                if urlsplit(vault_url).netloc.lower() != urlsplit(self.conn.endpoint).netloc.lower():
                    raise SecretMissing(f"Key Vault {vault_url} is not an Azure vault (*.vault.azure.net) nor "
                                        "served by the ARM endpoint in use; refusing to send it a token")
                kwargs["verify_challenge_resource"] = False
                if self.conn.ca_bundle:
                    kwargs["connection_verify"] = self.conn.ca_bundle
            client = self._secret_clients[vault_url] = SecretClient(vault_url, self.credential, **kwargs)
        return client


def as_json(model: Any) -> dict[str, Any]:
    """An SDK model (or None, or a plain mapping) as REST JSON."""
    if model is None:
        return {}
    return model.as_dict() if hasattr(model, "as_dict") else dict(model)


def arm_error(e: HttpResponseError) -> tuple[str | None, str]:
    """ARM's error code and message from any SDK error (409s arrive as ResourceExistsError, async failures
    as HttpResponseError with status 200: branch on the code, never on the class)."""
    err = getattr(e, "error", None)
    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or (e.message or str(e)).splitlines()[0]
    return code, message


def call_failed(e: Exception, what: str) -> ApplyFailed:
    if isinstance(e, ApplyFailed):
        return e
    if isinstance(e, ClientAuthenticationError) and getattr(e, "status_code", None) is None:  # no token at all
        first = (e.message or str(e)).splitlines()[0]
        return ApplyFailed(f"{what} failed: cannot authenticate to Azure ({first}): sign in with `az login`, set "
                           "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run where a managed identity "
                           "is available", code="AuthenticationFailed")
    if isinstance(e, HttpResponseError):
        code, message = arm_error(e)
        return ApplyFailed(f"{what} failed: {code or e.status_code}: {message}", code=code)
    if isinstance(e, ServiceResponseError):
        return ApplyFailed(f"{what}: the connection was lost before ARM answered ({str(e).splitlines()[0]}); the "
                           "call may have taken effect: re-run the same command, it checks before acting")
    return ApplyFailed(f"{what} failed: cannot reach ARM ({type(e).__name__}: {str(e).splitlines()[0]})")


@dataclass(frozen=True)
class Call:
    """One Azure operation of a plan, as data: which client, which operation, which arguments.

    ``args`` hold REST JSON; a secret appears only as ``{"$secret": "<reference>"}`` and is resolved
    in memory just before the call.
    """

    client: str
    op: str
    args: dict[str, Any]
    resource_id: str
    effect: str  # "create" | "delete" | "update"
    summary: str

    def __post_init__(self) -> None:
        for ref in secret_refs(self.args):
            parse_secret_ref(ref)  # a malformed reference fails when the plan is made or loaded, not mid-apply

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "op": self.op, "args": self.args, "resource_id": self.resource_id,
                "effect": self.effect, "summary": self.summary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Call:
        return cls(d["client"], d["op"], d["args"], d["resource_id"], d["effect"], d["summary"])


def resolve_secrets(value: Any, az: Azure | None = None) -> Any:
    """Replace ``{"$secret": ref}`` markers with the secret's value (in memory only); Key Vault references
    need ``az``."""
    if isinstance(value, dict):
        if set(value) == {"$secret"}:
            return read_secret(str(value["$secret"]), az)
        return {k: resolve_secrets(v, az) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v, az) for v in value]
    return value


def secret_refs(value: Any) -> list[str]:
    """Every secret reference (``{"$secret": ref}``) inside a call's arguments."""
    if isinstance(value, dict):
        if set(value) == {"$secret"}:
            return [str(value["$secret"])]
        return [r for v in value.values() for r in secret_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in secret_refs(v)]
    return []


# Key Vault's DNS suffixes in Azure's clouds (public, China, US Government, Germany).
AZURE_VAULT_SUFFIXES = (".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".vault.microsoftazure.de")
SECRET_REF_FORMS = "env:NAME or a Key Vault secret URL https://<vault>.vault.azure.net/secrets/<name>[/<version>]"
_ENV_REF = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_VAULT_REF = re.compile(r"^(https://[^/?#@\s]+(?:/[^?#\s]*?)?)/secrets/([0-9A-Za-z-]{1,127})(?:/([0-9A-Fa-f]{32}))?/?$")


@dataclass(frozen=True)
class SecretRef:
    """A parsed secret reference: an environment variable, or a Key Vault secret (its latest version
    unless the URL names one)."""

    text: str
    env: str | None = None
    vault_url: str | None = None
    name: str | None = None
    version: str | None = None


def is_azure_vault(vault_url: str) -> bool:
    return (urlsplit(vault_url).hostname or "").lower().endswith(AZURE_VAULT_SUFFIXES)


def parse_secret_ref(ref: str) -> SecretRef:
    """``env:NAME``, or ``https://<vault host>[/<path>]/secrets/<name>[/<version>]`` (a path before
    ``/secrets`` only for a vault that is not Azure's, e.g. armsim's ``{endpoint}/keyvault/<vault>``).
    Anything else is a UsageError; the reference is checked, nothing is read."""
    if m := _ENV_REF.match(ref):
        return SecretRef(ref, env=m.group(1))
    if (m := _VAULT_REF.match(ref)) and not (is_azure_vault(m.group(1)) and urlsplit(m.group(1)).path):
        return SecretRef(ref, vault_url=m.group(1), name=m.group(2), version=m.group(3))
    shown = f"'{ref}'" if ref.startswith(("env:", "https://")) else "(not shown: it may be the secret itself)"
    raise UsageError(f"bad secret reference {shown}: use {SECRET_REF_FORMS}")


def read_secret(ref: str, az: Azure | None = None) -> str:
    """Resolve a secret reference (``parse_secret_ref``) in memory. The value is never logged or stored and
    no error shows it: failures are SecretMissing naming the reference. A Key Vault reference is read
    with ``az``'s credential (the managed identity in Azure Automation)."""
    parsed = parse_secret_ref(ref)
    if parsed.env is not None:
        value = os.environ.get(parsed.env)
        if not value:
            raise SecretMissing(f"admin secret not set: environment variable {parsed.env} is empty or missing")
        return value
    if az is None:
        raise TypeError(f"reading the Key Vault secret {ref} needs the Azure connection: read_secret(ref, az)")
    return _read_vault_secret(az, parsed)


def check_secrets(az: Azure, calls: Iterable[Call]) -> None:
    """Resolve every secret the calls reference, now, and forget the values: a missing or unreadable
    secret fails before the first write instead of half-way through a plan."""
    for ref in sorted({r for call in calls for r in secret_refs(call.args)}):
        read_secret(ref, az)


def _read_vault_secret(az: Azure, ref: SecretRef) -> str:
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    assert ref.vault_url is not None and ref.name is not None
    where = f"admin secret {ref.text}"
    try:
        value = az.secret_client(ref.vault_url).get_secret(ref.name, ref.version).value
    except ResourceNotFoundError:
        raise SecretMissing(f"{where}: no such secret{' version' if ref.version else ''} in the vault "
                            "(SecretNotFound)") from None
    except ClientAuthenticationError as e:
        raise SecretMissing(f"{where}: Key Vault did not accept the identity's token ({first_line(e)})") from None
    except HttpResponseError as e:
        code, inner = _vault_error_codes(e)
        why = f"{code or e.status_code}" + (f"/{inner}" if inner else "")
        if inner == "ForbiddenByRbac":
            why += ": the identity needs the data action Microsoft.KeyVault/vaults/secrets/getSecret/action on " \
                   "the vault or secret (role Key Vault Secrets User)"
        raise SecretMissing(f"{where}: Key Vault refused to read it ({why})") from None
    except (AzureError, ValueError) as e:
        raise SecretMissing(f"{where}: cannot reach Key Vault ({type(e).__name__}: {first_line(e)})") from None
    if not value:
        raise SecretMissing(f"{where}: the secret is empty")
    return str(value)


def _vault_error_codes(e: HttpResponseError) -> tuple[str | None, str | None]:
    """Key Vault's ``error.code`` and ``error.innererror.code`` (e.g. Forbidden / ForbiddenByRbac)."""
    err = getattr(e, "error", None)
    inner = getattr(err, "innererror", None) or {}
    return getattr(err, "code", None), inner.get("code") if isinstance(inner, dict) else None



DURATIONS_FILE = "durations.json"


class DurationMemory:
    """How long each kind of long-running operation took on one ARM endpoint and subscription: the shortest seen
    (an operation is not expected to end sooner than the fastest of its kind did). Kinds are ``METHOD
    namespace/type[/child type][/action]``, lower-case (``put microsoft.compute/snapshots``). Kept in ``path``
    (``RUNBOOKS_HOME/durations.json``, under ``scope``: endpoint and subscription) when that folder exists, so the
    next run on the same machine knows them too; nothing in it is secret, and losing it costs polls only."""

    def __init__(self, path: Path | None = None, scope: str = "") -> None:
        self.path, self.scope = path, scope
        self._shortest: dict[str, float] = self._load().get(scope, {})
        self._lock = threading.Lock()

    def expected(self, kind: str) -> float | None:
        with self._lock:
            return self._shortest.get(kind)

    def learn(self, kind: str, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if seconds >= self._shortest.get(kind, float("inf")):
                return
            self._shortest[kind] = seconds
            self._save()

    def _load(self) -> dict[str, dict[str, float]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(scope): {str(k): float(v) for k, v in kinds.items()
                             if isinstance(v, (int, float)) and math.isfinite(v) and v > 0}
                for scope, kinds in data.items() if isinstance(kinds, dict)} if isinstance(data, dict) else {}

    def _save(self) -> None:
        """Merge into the file (another process may have learnt meanwhile); silently skipped when it cannot be."""
        if self.path is None or not self.path.parent.is_dir():
            return
        from filelock import FileLock, Timeout

        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with FileLock(str(self.path) + ".lock", timeout=5, mode=0o600):  # processes merge in turn: none lost
                data = self._load()
                mine = data.setdefault(self.scope, {})
                for kind, seconds in self._shortest.items():
                    mine[kind] = min(seconds, mine.get(kind, seconds))
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                    json.dump(data, f, indent=1, sort_keys=True)
                os.replace(tmp, self.path)
        except (OSError, Timeout):
            with contextlib.suppress(OSError):
                tmp.unlink()


_MEMORIES: dict[tuple[str, str], DurationMemory] = {}
_MEMORIES_LOCK = threading.Lock()


def duration_memory(conn: Connection) -> DurationMemory:
    """The connection's memory of operation durations (one per runbooks home, endpoint and subscription)."""
    from runbooks.journal import home

    where = home()
    scope = f"{conn.endpoint.lower()} {conn.subscription_id.lower()}"
    with _MEMORIES_LOCK:
        key = (str(where), scope)
        if key not in _MEMORIES:
            _MEMORIES[key] = DurationMemory(where / DURATIONS_FILE, scope)
        return _MEMORIES[key]


def operation_kind(method: str, url: str) -> str:
    """``METHOD namespace/type[/child type…][/action]`` of a request to an ARM resource URL, lower-case."""
    path = urlsplit(url).path.rstrip("/")
    tail = path.rsplit("/providers/", 1)[-1].split("/")
    return f"{method} {'/'.join([tail[0], *tail[1::2]])}".lower()


_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")


def arm_time(text: Any) -> datetime:
    """A time as ARM writes it (``…T10:00:21.9156601Z``: up to 7 fraction digits, which Python 3.10 cannot read);
    ValueError if it is none."""
    return datetime.fromisoformat(_FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], str(text or ""))
                                  .replace("Z", "+00:00"))


def operation_seconds(start: Any, end: Any) -> float | None:
    """``endTime - startTime`` of an operation status body (Compute's and disks' carry both), in seconds."""
    try:
        return (arm_time(end) - arm_time(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _hinted_polling() -> Any:
    """The polling method class (made on first use: azure.mgmt.core is imported with the first SDK client)."""
    global _HINTED
    if _HINTED is not None:
        return _HINTED
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class HintedPolling(ARMPolling):
        """ARMPolling that waits before its first poll as ARM's answer asks (Retry-After, else the interval):
        azure-core polls at once since Azure/azure-sdk-for-python#26376, a read that can only say InProgress.
        Once an operation of the same kind has finished on this connection, no poll is made before the
        shortest such operation would have ended (Retry-After is a floor; ARM's providers send a fixed one:
        Compute 10 s for a create of 90 s). What it waits is learnt from the operation status (``startTime``/
        ``endTime``, which Compute and disks report); without them, a time measured here is only an upper bound
        (no poll was made sooner), so an operation already done at the first poll after the wait lowers the
        expectation by a quarter (``probe_lower``): it never sticks to one slow operation."""

        def __init__(self, interval: float, memory: DurationMemory, longest: float, **kwargs: Any) -> None:
            super().__init__(interval, **kwargs)
            self._memory, self._kind, self._began, self._longest = memory, "", time.monotonic(), longest
            self._polls = 0
            self._expected: float | None = None

        def initialize(self, client: Any, initial_response: Any, deserialization_callback: Any) -> None:
            self._began, self._polls = time.monotonic(), 0
            request = initial_response.http_response.request
            self._kind = operation_kind(str(request.method), str(request.url))
            self._expected = self._memory.expected(self._kind)  # what this operation's first wait is planned on
            super().initialize(client, initial_response, deserialization_callback)

        def _delay(self) -> None:
            wait = self._extract_delay()
            expected = self._expected
            if expected is not None:  # never silent longer than a hint may ask (RUNBOOKS_MAX_RETRY_AFTER_S)
                wait = max(wait, min(self._began + expected - time.monotonic(), self._longest))
            self._sleep(wait)

        def _poll(self) -> None:
            if not self.finished():
                self._delay()  # before the first poll too
            super()._poll()

        def update_status(self) -> None:
            super().update_status()
            self._polls += 1
            if self.status().lower() != "succeeded":
                return
            body: Any = None
            with contextlib.suppress(Exception):
                body = self._pipeline_response.http_response.json()
            took = operation_seconds(body.get("startTime"), body.get("endTime")) if isinstance(body, dict) else None
            if took is not None:
                self._memory.learn(self._kind, took)
            else:
                self._memory.learn(self._kind, probe_lower(self._expected, self._polls,
                                                           time.monotonic() - self._began))

    _HINTED = HintedPolling
    return _HINTED


_HINTED: Any = None


def probe_lower(expected: float | None, polls: int, measured: float) -> float:
    """What to learn from an operation seen done after ``measured`` seconds on its ``polls``-th poll, when nothing
    says when it really ended: the first poll after waiting ``expected`` already found it done, so it may be
    shorter still (expect a quarter less next time); otherwise what was measured (kept only if shorter)."""
    if expected is not None and polls == 1:
        return min(expected * 0.75, measured)
    return measured


def polling_for(az: Azure) -> Any:
    """A fresh polling method for one long-running call on ``az`` (``polling=`` of the SDK's ``begin_*``)."""
    interval = az.conn.polling_interval if az.conn.polling_interval is not None else 30.0
    # A POST action's answer (redeploy, start, deallocate) is never read: no final GET on its Location once the
    # operation status says Succeeded (the option changes nothing for a PUT, PATCH or DELETE).
    return _hinted_polling()(interval, duration_memory(az.conn), az.retry_guard.max_s,
                             lro_options={"final-state-via": "azure-async-operation"},
                             path_format_arguments={"endpoint": az.conn.endpoint})


def start_call(az: Azure, call: Call) -> Any:
    """Send one call; returns its poller (LRO) or result. Errors become ApplyFailed."""
    client = az.client(call.client)
    group, _, method = call.op.partition(".")
    fn = getattr(getattr(client, group), method)
    try:
        if method.startswith("begin_"):
            return fn(**resolve_secrets(call.args, az), polling=polling_for(az))
        return fn(**resolve_secrets(call.args, az))
    except AZURE_ERRORS as e:
        raise call_failed(e, call.summary) from e


def finish(poller: Any, call: Call, op: Operation | None = None) -> Any:
    """Wait for a started call. ``op`` (``runbooks.progress``) is told the poller's status every half second: a
    live line moves, a plain one says it is still running every ``RUNBOOKS_PROGRESS_EVERY_S`` seconds, so a
    create that takes minutes at Azure's pace is never silent."""
    try:
        if op is not None and hasattr(poller, "done") and hasattr(poller, "wait"):
            from runbooks.progress import wait_for_poller

            wait_for_poller(poller, op)
        return poller.result() if hasattr(poller, "result") else poller
    except AZURE_ERRORS as e:
        raise call_failed(e, call.summary) from e


@dataclass(frozen=True)
class ResourceParts:
    """An ARM resource id, parsed (``azure.mgmt.core.tools.parse_resource_id``)."""

    subscription: str
    resource_group: str
    type: str  # the top-level type, lower-case: "virtualmachines", "disks"
    name: str
    child: str | None = None  # a child resource's name (an extension of a VM)


def resource_parts(resource_id: str) -> ResourceParts:
    """Parse ``/subscriptions/S/resourceGroups/RG/providers/NS/TYPE/NAME[/CHILDTYPE/CHILD]``; UsageError if not."""
    from azure.mgmt.core.tools import parse_resource_id

    p = parse_resource_id(resource_id or "")
    if not all(p.get(k) for k in ("subscription", "resource_group", "type", "name")):
        raise UsageError(f"malformed resource id '{resource_id}'")
    child = p.get("child_name_1")
    return ResourceParts(str(p["subscription"]), str(p["resource_group"]), str(p["type"]).lower(), str(p["name"]),
                         str(child) if child else None)


_AGREEMENT = re.compile(r"^/subscriptions/[^/]+/providers/Microsoft\.MarketplaceOrdering/offerTypes/virtualmachine/"
                        r"publishers/([^/]+)/offers/([^/]+)/plans/([^/]+)/agreements/current$", re.IGNORECASE)


def agreement_id(subscription: str, publisher: str, offer: str, plan: str) -> str:
    """The id of the legal terms of a Marketplace plan on a subscription (``marketplace_agreements.get``)."""
    return (f"/subscriptions/{subscription}/providers/Microsoft.MarketplaceOrdering/offerTypes/VirtualMachine/"
            f"publishers/{publisher}/offers/{offer}/plans/{plan}/agreements/current")


def agreement_parts(resource_id: str) -> tuple[str, str, str] | None:
    """(publisher, offer, plan) of an agreement id; None for any other id."""
    m = _AGREEMENT.match(resource_id or "")
    return (m.group(1), m.group(2), m.group(3)) if m else None


def get_agreement(az: Azure, publisher: str, offer: str, plan: str) -> dict[str, Any] | None:
    """The legal terms of a Marketplace plan on this subscription, as ARM's JSON (None: no such plan)."""
    try:
        terms = az.marketplace().marketplace_agreements.get("virtualmachine", publisher, offer, plan)
    except ResourceNotFoundError:
        return None
    return dict(terms.serialize(keep_readonly=True))


def get_resource(az: Azure, resource_id: str) -> dict[str, Any] | None:
    """GET any resource type the toolkit creates or changes, by id; None when it does not exist."""
    if "/providers/microsoft.authorization/locks/" in resource_id.lower():
        return _get_lock(az, resource_id)
    if (terms := agreement_parts(resource_id)) is not None:
        try:
            return get_agreement(az, *terms)
        except AZURE_ERRORS as e:
            raise call_failed(e, f"read {resource_id}") from e
    p = resource_parts(resource_id)
    getters: dict[str, Any] = {
        "disks": az.compute.disks.get, "snapshots": az.compute.snapshots.get, "images": az.compute.images.get,
        "networkinterfaces": az.network.network_interfaces.get,
        "publicipaddresses": az.network.public_ip_addresses.get,
    }
    try:
        if p.type == "virtualmachines" and p.child is not None:
            r: Any = az.compute.virtual_machine_extensions.get(p.resource_group, p.name, p.child)
        elif p.type == "virtualmachines":
            r = az.compute.virtual_machines.get(p.resource_group, p.name, expand="instanceView")
        elif p.type in getters:
            r = getters[p.type](p.resource_group, p.name)
        else:
            raise UsageError(f"unsupported resource type in {resource_id}")
    except ResourceNotFoundError:
        return None
    except AZURE_ERRORS as e:
        raise call_failed(e, f"read {resource_id}") from e
    return r.as_dict() if hasattr(r, "as_dict") else dict(r)


def scope_of_lock(lock_id: str) -> str:
    """The scope a management lock sits at: its id less ``/providers/Microsoft.Authorization/locks/NAME``."""
    cut = lock_id.lower().rfind("/providers/microsoft.authorization/locks/")
    return lock_id[:cut] if cut >= 0 else lock_id


def _get_lock(az: Azure, lock_id: str) -> dict[str, Any] | None:
    """A management lock by id, as ARM's JSON (its msrest model serialised); None when it does not exist."""
    scope, name = scope_of_lock(lock_id), lock_id.rsplit("/", 1)[-1]
    try:
        lock = az.locks.management_locks.get_by_scope(scope, name)
    except ResourceNotFoundError:
        return None
    except AZURE_ERRORS as e:
        raise call_failed(e, f"read {lock_id}") from e
    return dict(lock.serialize(keep_readonly=True))


# --- raw reads: ARM's JSON without the SDK's models ---------------------------------------------------------
# A 10 000-VM list turned into SDK models costs seconds of CPU, and importing azure.mgmt.compute alone costs
# over half a second of a job's cold start. These reads go through a plain ARM pipeline with the same policies
# (credential, pacer, Retry-After guard, request counter) and return ARM's JSON as sent: the same dicts the
# SDK models' ``as_dict()`` give (tests/runbooks/test_raw_reads.py compares both on armsim).

# The api-versions the installed SDKs send for these reads (test_raw_reads checks they still match).
COMPUTE_API = "2026-04-01"  # azure-mgmt-compute 39
ACTIVITY_LOG_API = "2015-04-01"  # azure-mgmt-monitor, activity_logs.list
_RAW_CLIENT = "ARMPipelineClient"  # its key among the connection's clients
_RAW_ERRORS = {401: ClientAuthenticationError, 404: ResourceNotFoundError}


def arm_pipeline(az: Azure) -> Any:
    """A bare ARM pipeline client on ``az``'s connection, made once: the policies an SDK management client
    builds (request id, headers, user agent, proxy, content decoding, resource-provider registration,
    redirects, retries, the ARM bearer challenge, logging), with the connection's pacer, Retry-After guard and
    request counter after the retry policy, as the SDK clients have them."""
    client = az._sdk_clients.get(_RAW_CLIENT)
    if client is None:
        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import (
            ARMAutoResourceProviderRegistrationPolicy,
            ARMChallengeAuthenticationPolicy,
            ARMHttpLoggingPolicy,
        )

        kwargs = {k: v for k, v in az.client_kwargs.items() if k not in ("base_url", "credential_scopes")}
        kwargs.setdefault("sdk_moniker", "azure-rca-runbooks")
        scopes = az.client_kwargs["credential_scopes"]
        chain = [policies.RequestIdPolicy(**kwargs), policies.HeadersPolicy(**kwargs),
                 policies.UserAgentPolicy(**kwargs), policies.ProxyPolicy(**kwargs),
                 policies.ContentDecodePolicy(**kwargs), ARMAutoResourceProviderRegistrationPolicy(),
                 policies.RedirectPolicy(**kwargs), policies.RetryPolicy(**kwargs),
                 ARMChallengeAuthenticationPolicy(az.credential, *scopes, **kwargs),
                 policies.CustomHookPolicy(**kwargs), policies.NetworkTraceLoggingPolicy(**kwargs),
                 policies.DistributedTracingPolicy(**kwargs), policies.SensitiveHeaderCleanupPolicy(**kwargs),
                 ARMHttpLoggingPolicy(**kwargs)]
        client = az._sdk_clients[_RAW_CLIENT] = ARMPipelineClient(base_url=az.conn.endpoint, policies=chain,
                                                                  **kwargs)
    return client


def _raw_send(az: Azure, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    """GET ``url`` (a path under the endpoint, or a nextLink) → ARM's JSON. Fails as the SDK's generated code
    does: ClientAuthenticationError (401), ResourceNotFoundError (404), else HttpResponseError, each carrying
    ARM's error code and message."""
    import json

    from azure.core.exceptions import map_error
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat

    client = arm_pipeline(az)
    request = HttpRequest("GET", client.format_url(url), params=params, headers={"Accept": "application/json"})
    response = client.send_request(request)
    if response.status_code != 200:
        map_error(status_code=response.status_code, response=response, error_map=_RAW_ERRORS)
        raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    body = json.loads(response.content) if response.content else {}
    return body if isinstance(body, dict) else {}


def raw_get(az: Azure, path: str, api_version: str, **params: str) -> dict[str, Any]:
    """One ARM resource (``path``: /subscriptions/…) as ARM's JSON; errors as an SDK ``get`` raises them."""
    return _raw_send(az, path, {"api-version": api_version, **params})


def raw_pages(az: Azure, path: str, api_version: str, **params: str) -> Iterator[list[dict[str, Any]]]:
    """The pages of an ARM list (each its ``value``, as ARM's JSON), following ``nextLink``; errors as the SDK's
    pagers raise them."""
    page = _raw_send(az, path, {"api-version": api_version, **params})
    while True:
        yield list(page.get("value") or [])
        next_link = page.get("nextLink")
        if not next_link:
            return
        page = _raw_send(az, str(next_link))


def vm_path(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.Compute/" \
           f"virtualMachines/{name}"


def get_vm(az: Azure, resource_group: str, name: str, expand: str | None = None) -> dict[str, Any]:
    """A VM as ARM's JSON (``expand``: instanceView or userData), without the compute SDK."""
    extra = {"$expand": expand} if expand else {}
    return raw_get(az, vm_path(az.conn.subscription_id, resource_group, name), COMPUTE_API, **extra)


def get_instance_view(az: Azure, resource_group: str, name: str) -> dict[str, Any]:
    """A VM's instance view as ARM's JSON, without the compute SDK."""
    return raw_get(az, vm_path(az.conn.subscription_id, resource_group, name) + "/instanceView", COMPUTE_API)


def vm_pages(az: Azure, status_only: bool = False) -> Iterator[list[dict[str, Any]]]:
    """The subscription's VMs, page by page, as ARM's JSON (``statusOnly=true``: each with its instance-view
    statuses)."""
    extra = {"statusOnly": "true"} if status_only else {}
    return raw_pages(az, f"/subscriptions/{az.conn.subscription_id}/providers/Microsoft.Compute/virtualMachines",
                     COMPUTE_API, **extra)


def image_pages(az: Azure) -> Iterator[list[dict[str, Any]]]:
    """The subscription's managed images, page by page, as ARM's JSON."""
    return raw_pages(az, f"/subscriptions/{az.conn.subscription_id}/providers/Microsoft.Compute/images",
                     COMPUTE_API)


def activity_pages(az: Azure, filter: str) -> Iterator[list[dict[str, Any]]]:
    """The subscription's activity-log events matching ``filter`` (OData, e.g. ``eventTimestamp ge '…'``),
    page by page, as ARM's JSON."""
    return raw_pages(az, f"/subscriptions/{az.conn.subscription_id}/providers/Microsoft.Insights/eventtypes/"
                         "management/values", ACTIVITY_LOG_API, **{"$filter": filter})
