"""Azure access: where ARM is, how we authenticate, the SDK clients, and running one planned call.

Connection settings come from flags or the environment — ``RUNBOOKS_ARM_ENDPOINT``, ``RUNBOOKS_CA_BUNDLE``,
``AZURE_SUBSCRIPTION_ID`` — with public Azure as the default. Credentials come from azure-identity's
``DefaultAzureCredential`` (armsim's managed-identity endpoint makes it work unchanged).
This is the only module that knows SDK method names; everything else speaks in ``Call`` values.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from runbooks.errors import ApplyFailed, SecretMissing, UsageError

PUBLIC_ARM = "https://management.azure.com"


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
        return cls(sub, url, ca)


class Azure:
    """The SDK clients for one connection, sharing one credential and one request counter."""

    def __init__(self, conn: Connection, credential: Any = None) -> None:
        from azure.mgmt.compute import ComputeManagementClient
        from azure.mgmt.monitor import MonitorManagementClient
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.locks import ManagementLockClient

        if credential is None:
            from azure.identity import DefaultAzureCredential

            credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        self.conn = conn
        self.counter = RequestCounter()
        kwargs: dict[str, Any] = {"base_url": conn.endpoint, "per_retry_policies": [self.counter],
                                  "credential_scopes": ["https://management.azure.com/.default"]}
        if conn.ca_bundle:
            kwargs["connection_verify"] = conn.ca_bundle
        if conn.polling_interval is not None:
            kwargs["polling_interval"] = conn.polling_interval
        sub = conn.subscription_id
        self.compute = ComputeManagementClient(credential, sub, **kwargs)
        self.network = NetworkManagementClient(credential, sub, **kwargs)
        self.locks = ManagementLockClient(credential, sub, **kwargs)
        self.monitor = MonitorManagementClient(credential, sub, **kwargs)

    def client(self, name: str) -> Any:
        return {"compute": self.compute, "network": self.network}[name]


def arm_error(e: HttpResponseError) -> tuple[str | None, str]:
    """ARM's error code and message from any SDK error (409s arrive as ResourceExistsError, async failures
    as HttpResponseError with status 200: branch on the code, never on the class)."""
    err = getattr(e, "error", None)
    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or (e.message or str(e)).splitlines()[0]
    return code, message


def call_failed(e: Exception, what: str) -> ApplyFailed:
    if isinstance(e, HttpResponseError):
        code, message = arm_error(e)
        return ApplyFailed(f"{what} failed: {code or e.status_code}: {message}", code=code)
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

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "op": self.op, "args": self.args, "resource_id": self.resource_id,
                "effect": self.effect, "summary": self.summary}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Call:
        return cls(d["client"], d["op"], d["args"], d["resource_id"], d["effect"], d["summary"])


def resolve_secrets(value: Any) -> Any:
    """Replace ``{"$secret": ref}`` markers with the secret's value (in memory only)."""
    if isinstance(value, dict):
        if set(value) == {"$secret"}:
            return read_secret(str(value["$secret"]))
        return {k: resolve_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(v) for v in value]
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


def read_secret(ref: str) -> str:
    """Resolve a secret reference: ``env:NAME``. The value is never logged or stored."""
    kind, _, name = ref.partition(":")
    if kind == "env" and name:
        value = os.environ.get(name)
        if not value:
            raise SecretMissing(f"admin secret not set: environment variable {name} is empty or missing")
        return value
    if ref.startswith("https://") and ".vault." in ref:
        raise SecretMissing(f"Key Vault secret references ({ref}) are not supported yet; use env:NAME")
    raise UsageError(f"bad secret reference '{ref}': use env:NAME")


def start_call(az: Azure, call: Call) -> Any:
    """Send one call; returns its poller (LRO) or result. Errors become ApplyFailed."""
    client = az.client(call.client)
    group, _, method = call.op.partition(".")
    fn = getattr(getattr(client, group), method)
    try:
        return fn(**resolve_secrets(call.args))
    except (HttpResponseError, ServiceRequestError) as e:
        raise call_failed(e, call.summary) from e


def finish(poller: Any, call: Call) -> Any:
    try:
        return poller.result() if hasattr(poller, "result") else poller
    except (HttpResponseError, ServiceRequestError) as e:
        raise call_failed(e, call.summary) from e


def id_parts(resource_id: str) -> tuple[str, str, str, str | None]:
    """(resource group, type, name, child name) of an ARM id like ``…/resourceGroups/RG/providers/NS/TYPE/NAME``."""
    parts = resource_id.strip("/").split("/")
    if len(parts) < 8 or parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        raise UsageError(f"malformed resource id '{resource_id}'")
    return parts[3], parts[6].lower(), parts[7], parts[9] if len(parts) >= 10 else None


def get_resource(az: Azure, resource_id: str) -> dict[str, Any] | None:
    """GET any resource type the toolkit creates, by id; None when it does not exist."""
    rg, rtype, name, child = id_parts(resource_id)
    getters: dict[str, Any] = {
        "disks": az.compute.disks.get, "snapshots": az.compute.snapshots.get, "images": az.compute.images.get,
        "networkinterfaces": az.network.network_interfaces.get,
        "publicipaddresses": az.network.public_ip_addresses.get,
    }
    try:
        if rtype == "virtualmachines" and child is not None:
            r: Any = az.compute.virtual_machine_extensions.get(rg, name, child)
        elif rtype == "virtualmachines":
            r = az.compute.virtual_machines.get(rg, name)
        elif rtype in getters:
            r = getters[rtype](rg, name)
        else:
            raise UsageError(f"unsupported resource type in {resource_id}")
    except ResourceNotFoundError:
        return None
    except (HttpResponseError, ServiceRequestError) as e:
        raise call_failed(e, f"read {resource_id}") from e
    return r.as_dict() if hasattr(r, "as_dict") else dict(r)
