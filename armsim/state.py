"""The emulated world: configuration, subscriptions (each with its providers' state), operations,
the request log and fault rules. One re-entrant lock serialises every request, so models need no
locking of their own.

Models are dataclasses holding only JSON values, so ``World.save``/``World.load`` can persist the
whole world to a file (``--state``) and separate commands see the same Azure.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from armsim.errors import ResourceGroupNotFound, SubscriptionNotFound
from armsim.lro import COMPLETERS, DEFAULT_LATENCIES, Operation, OperationBook

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-00000000a2a1"
DEFAULT_TENANT = "00000000-0000-0000-0000-0000000070e1"


@dataclass
class Config:
    """Knobs of the emulator. ``latency_scale`` shrinks every operation's duration (and speeds up the
    throttling refill by the same factor) so tests and demos run the same story in less time."""

    latency_scale: float = 1.0
    latencies: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LATENCIES))
    throttling: bool = True
    buckets: dict[str, list[float]] = field(
        default_factory=lambda: {"read": [250, 25], "write": [200, 10], "delete": [200, 10]}
    )
    page_size: int = 1000
    rbac: bool = False
    retry_after: str = "ms"  # poll hints: "ms"/"seconds" (exact time left), "azure" (per provider, as ARM), "none"
    # Automation sandbox (armsim/automation/sandbox.py). Job run times are real, not scaled by latency_scale.
    sandbox_python: str = ""  # a Python 3.10 interpreter for jobs; "" = python3.10 on PATH or under pyenv
    sandbox_max_jobs: int = 4  # jobs running at once; the rest wait as New
    job_time_limit_s: float = 3 * 3600.0  # Azure's fair-share limit: a job running longer ends Stopped
    package_ca_bundle: str = ""  # extra CA file trusted when fetching https package contentLinks
    # Redeploy of a deallocated VM: "refuse" (409 OperationNotAllowed, as Azure's support team documents) or
    # "start" (place it on a new host and start it, if your Azure does that).
    redeploy_deallocated: str = "refuse"

    def latency(self, kind: str) -> float:
        return self.latencies.get(kind, 1.0) * self.latency_scale


class Collections:
    """A provider's state: named dicts of model dataclasses, keyed by lower-cased resource id."""

    MODELS: ClassVar[dict[str, type]] = {}

    def to_state(self) -> dict[str, Any]:
        return {name: {k: dataclasses.asdict(v) for k, v in getattr(self, name).items()} for name in self.MODELS}

    def load_state(self, data: dict[str, Any]) -> None:
        for name, model in self.MODELS.items():
            getattr(self, name).update({k: model(**v) for k, v in data.get(name, {}).items()})


@dataclass
class ResourceGroup:
    id: str
    name: str
    location: str
    tags: dict[str, str] = field(default_factory=dict)
    managed_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id, "name": self.name, "type": "Microsoft.Resources/resourceGroups",
            "location": self.location, "properties": {"provisioningState": "Succeeded"},
        }
        if self.tags:
            out["tags"] = self.tags
        if self.managed_by:
            out["managedBy"] = self.managed_by
        return out


class Subscription:
    """Everything ARM keeps for one subscription."""

    def __init__(self, world: World, subscription_id: str, tenant_id: str = DEFAULT_TENANT,
                 display_name: str = "armsim") -> None:
        from armsim.authorization.models import LockState
        from armsim.automation.models import AutomationState
        from armsim.compute.models import ComputeState
        from armsim.keyvault.models import KeyVaultState
        from armsim.marketplaceordering.models import MarketplaceState
        from armsim.network.models import NetworkState
        from armsim.policy.models import PolicyState
        from armsim.resourcehealth.models import HealthState
        from armsim.storage.models import StorageState

        self.world = world
        self.id = subscription_id
        self.tenant_id = tenant_id
        self.display_name = display_name
        self.state = "Enabled"  # Disabled: read-only (ReadOnlyDisabledSubscription on every write)
        self.resource_groups: dict[str, ResourceGroup] = {}
        self.compute = ComputeState(self)
        self.network = NetworkState(self)
        self.locks = LockState(self)
        self.automation = AutomationState(self)
        self.keyvault = KeyVaultState(self)
        self.health = HealthState(self)
        self.policy = PolicyState(self)
        self.activity: list[dict[str, Any]] = []
        self.storage = StorageState(self)
        self.marketplace = MarketplaceState(self)

    def rg(self, name: str) -> ResourceGroup:
        try:
            return self.resource_groups[name.lower()]
        except KeyError:
            raise ResourceGroupNotFound(name) from None

    def rg_id(self, name: str) -> str:
        return f"/subscriptions/{self.id}/resourceGroups/{name}"

    def ensure_rg(self, name: str, location: str = "eastus", tags: dict[str, str] | None = None) -> ResourceGroup:
        key = name.lower()
        if key not in self.resource_groups:
            self.resource_groups[key] = ResourceGroup(self.rg_id(name), name, location, dict(tags or {}))
        return self.resource_groups[key]

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id, "tenant_id": self.tenant_id, "display_name": self.display_name, "state": self.state,
            "resource_groups": {k: dataclasses.asdict(v) for k, v in self.resource_groups.items()},
            "compute": self.compute.to_state(), "network": self.network.to_state(),
            "locks": self.locks.to_state(), "automation": self.automation.to_state(), "activity": self.activity,
            "keyvault": self.keyvault.to_state(), "health": self.health.to_state(),
            "policy": self.policy.to_state(), "storage": self.storage.to_state(),
            "marketplace": self.marketplace.to_state(),
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.resource_groups = {k: ResourceGroup(**v) for k, v in data.get("resource_groups", {}).items()}
        self.state = str(data.get("state") or "Enabled")
        self.compute.load_state(data.get("compute", {}))
        self.network.load_state(data.get("network", {}))
        self.locks.load_state(data.get("locks", {}))
        self.automation.load_state(data.get("automation", {}))
        self.keyvault.load_state(data.get("keyvault", {}))
        self.health.load_state(data.get("health", {}))
        self.policy.load_state(data.get("policy", {}))
        self.activity = list(data.get("activity", []))
        self.storage.load_state(data.get("storage", {}))
        self.marketplace.load_state(data.get("marketplace", {}))


class World:
    """The whole emulated Azure. Handlers receive it; ``lock`` is held for each request."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.lock = threading.RLock()
        self.subscriptions: dict[str, Subscription] = {}
        self.operations = OperationBook()
        self.requests: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.rbac: dict[str, Any] = {"roleDefinitions": [], "roleAssignments": []}
        self.buckets: dict[tuple[str, str], Any] = {}  # throttling token buckets, by (subscription, kind)
        self.clock = time.time
        self.dirty = False
        self.add_subscription(DEFAULT_SUBSCRIPTION)

    # --- subscriptions ---------------------------------------------------------------------------
    def add_subscription(self, subscription_id: str, tenant_id: str = DEFAULT_TENANT) -> Subscription:
        sub = self.subscriptions.get(subscription_id.lower())
        if sub is None:
            sub = Subscription(self, subscription_id, tenant_id)
            self.subscriptions[subscription_id.lower()] = sub
        return sub

    def sub(self, subscription_id: str) -> Subscription:
        try:
            return self.subscriptions[subscription_id.lower()]
        except KeyError:
            raise SubscriptionNotFound(subscription_id) from None

    @property
    def default(self) -> Subscription:
        return next(iter(self.subscriptions.values()))

    # --- time -------------------------------------------------------------------------------------
    def advance(self) -> None:
        """Finish every operation whose time has come, in the order they end."""
        for op in self.operations.due(self.clock()):
            self.finish(op)

    def finish(self, op: Operation) -> None:
        if op.done:
            return
        if op.fail_with is not None:
            op.status, op.error = "Failed", op.fail_with
        else:
            op.status = "Succeeded"
        done = COMPLETERS.get(op.kind)
        if done is not None:
            done(self, op)
        from armsim.insights.models import record_operation_end

        record_operation_end(self, op)
        self.dirty = True

    def settle(self) -> None:
        """Fast-forward: finish every pending operation now (used by tests and before saving)."""
        while pending := self.operations.pending():
            for op in sorted(pending, key=lambda o: o.end):
                op.end = min(op.end, self.clock())
                self.finish(op)

    def reset(self) -> None:
        with self.lock:
            cfg = self.config
            self.__init__(cfg)  # type: ignore[misc]

    # --- persistence ------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "format": "armsim-state/1",
            "config": dataclasses.asdict(self.config),
            "subscriptions": {k: s.to_state() for k, s in self.subscriptions.items()},
            "operations": [dataclasses.asdict(o) for o in self.operations.ops.values()],
            "rbac": self.rbac,
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.subscriptions = {}
        for key, sdata in data.get("subscriptions", {}).items():
            sub = Subscription(self, sdata["id"], sdata.get("tenant_id", DEFAULT_TENANT))
            sub.load_state(sdata)
            self.subscriptions[key] = sub
        self.operations = OperationBook()
        for o in data.get("operations", []):
            op = Operation(**o)
            self.operations.ops[op.id] = op
        self.rbac = data.get("rbac", self.rbac)

    def save(self, path: Path) -> None:
        with self.lock:
            text = json.dumps(self.to_state(), separators=(",", ":"))
            self.dirty = False
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        with self.lock:
            self.load_state(json.loads(path.read_text()))
