"""Signal types: everything about one kind of evidence lives in its class.

A playbook declares signals (``signals:`` in its YAML); each ``source:`` is one class below, which says

* its schema (pydantic fields: what a playbook may write),
* ``needs``: the observation facts it reads (``runbooks.observe.FACTS``), so a diagnosis reads only what
  the matched playbooks ask for,
* ``evaluate(obs)``: whether it holds on an observation, with a one-line detail shown as evidence,
* ``listable(with_model)``: whether the sweep can evaluate it from the subscription's VM list alone.

The playbook linter, detection, verification and the sweep all use these declarations. Adding a signal
type is adding a class here and naming it in ``Signal`` (and its source in ``SIGNAL_SOURCES``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from runbooks.observe import Observation, dotted
from runbooks.text import one_line


@dataclass(frozen=True)
class SignalResult:
    id: str
    holds: bool
    detail: str


class _SignalBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    id: str = Field(..., pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="kebab-case id")
    description: str = Field(..., min_length=1, description="what the signal means, in our own words")
    needs: ClassVar[frozenset[str]] = frozenset({"vm"})
    # evaluated on a VM that does not exist too (its create was refused): evidence read without the VM
    without_vm: ClassVar[bool] = False

    def evaluate(self, obs: Observation) -> SignalResult:
        if obs.vm is None and not self.without_vm:
            return SignalResult(self.id, False, "the VM does not exist")
        return self._evaluate(obs)

    def _evaluate(self, obs: Observation) -> SignalResult:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def listable(self, with_model: bool) -> bool:
        """Can the sweep evaluate this from the VM list (statuses, and the model when ``with_model``)?"""
        return False


class InstanceViewSignal(_SignalBase):
    """Holds when a status code of the VM's instance view (or of its VM agent) matches ``status_code``.

    ``status_code`` is an exact code (``OSState/generalized``) or a glob (``PowerState/*``).
    """

    source: Literal["instance-view"]
    status_code: str = Field(..., min_length=1)
    of: Literal["vm", "vm-agent"] = "vm"
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "instance-view"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        view = obs.instance_view
        statuses = view.get("statuses", []) if self.of == "vm" else (view.get("vmAgent") or {}).get("statuses", [])
        hit = next((s for s in statuses if fnmatch.fnmatch(str(s.get("code", "")).lower(),
                                                           self.status_code.lower())), None)
        where = "instance view" if self.of == "vm" else "VM agent status"
        if hit:
            message = f": {one_line(hit['message'])}" if hit.get("message") else ""
            return SignalResult(self.id, True, f"{where}: {hit.get('code')} ({hit.get('displayStatus', '')})"
                                f"{message}")
        seen = ", ".join(f"{s.get('displayStatus') or s.get('code')}" + (f" ({s.get('code')})" if s.get("displayStatus")
                                                                       else "") for s in statuses) or "nothing"
        return SignalResult(self.id, False, f"{where}: {seen}, not {self.status_code}")

    def listable(self, with_model: bool) -> bool:
        return self.of == "vm"  # the list carries the VM's statuses, not the VM agent's


class ProvisioningStateSignal(_SignalBase):
    """Holds when the VM's ``provisioningState`` equals ``state`` (case-insensitive)."""

    source: Literal["provisioning-state"]
    state: str = Field(..., min_length=1)

    def _evaluate(self, obs: Observation) -> SignalResult:
        state = str(obs.props.get("provisioningState", ""))
        return SignalResult(self.id, state.lower() == self.state.lower(), f"provisioningState: {state}")

    def listable(self, with_model: bool) -> bool:
        return with_model


class ActivityLogSignal(_SignalBase):
    """Holds when the activity log has a failed operation matching every given field.

    ``operation``: operation name (``Microsoft.Compute/virtualMachines/start/action``);
    ``error_code``: the ARM error code (``OperationNotAllowed``); ``message``: a regular expression
    searched in the error message (case-insensitive). A failure that no longer stands does not count, so a
    remediated VM does not read as broken: the same operation succeeded later, the VM was created again since
    (``resolved_at``), or one of ``resolved_by`` (operation names, e.g. the redeploy action) succeeded later.
    """

    source: Literal["activity-log"]
    operation: str | None = None
    error_code: str | None = None
    message: str | None = None
    resolved_by: tuple[str, ...] = Field((), description="operations whose later success resolves the failure")
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "activity-log"})
    without_vm: ClassVar[bool] = True

    @field_validator("message")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from e
        return v

    @model_validator(mode="after")
    def _something_to_match(self) -> ActivityLogSignal:
        if self.error_code is None and self.message is None:
            raise ValueError("give error_code or message (or both)")
        return self

    def _evaluate(self, obs: Observation) -> SignalResult:
        resolved = None
        for op in obs.failed_operations:
            if self.operation and str(op.get("operation", "")).lower() != self.operation.lower():
                continue
            if self.error_code and str(op.get("error_code", "")).lower() != self.error_code.lower():
                continue
            if self.message and not re.search(self.message, str(op.get("message") or ""), re.IGNORECASE):
                continue
            later = set(op.get("succeeded_after") or ())
            fixed_by = [r for r in self.resolved_by if r.lower() in later]
            if op.get("resolved_at") or fixed_by:
                resolved = resolved or (op if op.get("resolved_at") else {
                    **op, "resolved_by": f"{fixed_by[0]} succeeded later", "resolved_at": "since"})
                continue
            return SignalResult(self.id, True, f"{op.get('operation_display') or op.get('operation')} at "
                                f"{op.get('time')} failed with {op.get('error_code')}: {one_line(op.get('message'))}")
        if resolved is not None:
            return SignalResult(self.id, False, f"{resolved.get('operation_display') or resolved.get('operation')} "
                                f"failed with {resolved.get('error_code')} at {resolved.get('time')}, and "
                                f"{resolved.get('resolved_by') or 'it succeeded later'} "
                                f"({resolved.get('resolved_at')})")
        return SignalResult(self.id, False, "no matching failed operation in the activity log")

    def listable(self, with_model: bool) -> bool:
        return True  # from one subscription-wide read of the activity log, not one read per VM


class VmPropertySignal(_SignalBase):
    """Holds when a property of the VM model (camelCase dotted path, as ARM returns it) matches.

    ``equals``: the value compared as a string, case-insensitive; ``exists``: whether it is set.
    """

    source: Literal["vm-property"]
    property: str = Field(..., min_length=1, description="e.g. storageProfile.osDisk.managedDisk.id")
    equals: str | None = None
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> VmPropertySignal:
        if (self.equals is None) == (self.exists is None):
            raise ValueError("give exactly one of equals or exists")
        return self

    def _evaluate(self, obs: Observation) -> SignalResult:
        value = dotted(obs.props, self.property)
        if self.exists is not None:
            return SignalResult(self.id, (value is not None) == self.exists, f"{self.property}: {value}")
        return SignalResult(self.id, str(value).lower() == str(self.equals).lower(), f"{self.property}: {value}")

    def listable(self, with_model: bool) -> bool:
        return with_model


class RelatedResourceSignal(_SignalBase):
    """Holds when a resource of ``type`` exists whose properties match ``where``.

    ``where`` maps a dotted property path of the related resource to a value; the value ``$vm.id``
    stands for this VM's resource id (e.g. an image whose ``properties.sourceVirtualMachine.id`` is
    this VM). Supported types: ``Microsoft.Compute/images`` (the subscription's images).
    """

    source: Literal["related-resource"]
    type: Literal["Microsoft.Compute/images"] = Field(..., description="Microsoft.Compute/images")
    where: dict[str, str] = Field(..., min_length=1)
    scope: Literal["resource-group", "subscription"] = "subscription"
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "images"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        wanted = {k: v.replace("$vm.id", obs.vm_id) for k, v in self.where.items()}
        for image in obs.images:
            if self.scope == "resource-group" and \
                    f"/resourcegroups/{obs.ref.resource_group.lower()}/" not in str(image.get("id", "")).lower():
                continue
            if all(str(dotted(image, k) or "").lower() == v.lower() for k, v in wanted.items()):
                return SignalResult(self.id, True, f"image {image.get('name')} ({image.get('location')})")
        return SignalResult(self.id, False, "no image captured from this VM")

    def listable(self, with_model: bool) -> bool:
        return True  # from one subscription-wide image list, not one read per VM


class AvailabilitySetSignal(_SignalBase):
    """Holds when the VM's availability set is pinned by another member: one that holds hardware (running or
    stopped, not deallocated). Its members then can only be placed on that member's cluster."""

    source: Literal["availability-set"]
    pinned_by_member: Literal[True] = True
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "placement"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        if obs.availability_set is None:
            return SignalResult(self.id, False, "the VM is in no availability set")
        name = obs.availability_set.get("name")
        holding = sorted(f"{m.get('name')} ({m.get('powerState')})" for m in obs.members.values()
                         if str(m.get("powerState")) in ("running", "starting", "stopped", "stopping"))
        if holding:
            return SignalResult(self.id, True, f"availability set {name} is pinned to the cluster of "
                                f"{', '.join(holding)}")
        return SignalResult(self.id, False, f"no other member of availability set {name} holds hardware "
                            f"({len(obs.members)} other member{'s' if len(obs.members) != 1 else ''})")


class DiskLimitSignal(_SignalBase):
    """Holds when the VM's disks, added up, provide more IOPS than its size lets through uncached (``resourceSkus``
    UncachedDiskIOPS): the VM is capped below its disks. Throughput is shown beside it, not judged: disks whose
    MB/s add up past the cap are common and rarely busy at once."""

    source: Literal["disk-limits"]
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "disks", "skus"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        from runbooks import sizing

        name = sizing.current_size(obs)
        size = sizing.catalogue(obs).get(name.lower())
        if size is None or size.iops is None:
            return SignalResult(self.id, False, f"the uncached disk limits of {name} are not known")
        iops, mbps = sizing.disk_performance(obs)
        over = iops > size.iops
        cap = f"{size.iops} IOPS" + (f" / {size.mbps:g} MB/s" if size.mbps is not None else "")
        return SignalResult(self.id, over, f"{name} caps uncached disk traffic at {cap}; its disks provide {iops} "
                            f"IOPS / {mbps:g} MB/s")


class ResourceHealthSignal(_SignalBase):
    """Holds when a Resource Health status of the VM matches every given field: ``state`` (the *current*
    availability state: Available, Unavailable, Degraded, Unknown), ``article`` (globs on the ``articleId`` the
    platform gives an availability event, current or past: which RCA article explains it) and ``context``
    (``Platform Initiated`` or ``Customer Initiated``)."""

    source: Literal["resource-health"]
    state: Literal["Available", "Unavailable", "Degraded", "Unknown"] | None = None
    article: tuple[str, ...] = Field((), description="globs on articleId, e.g. VMA_RCA_Hardware_*")
    context: str | None = None
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "resource-health"})

    @model_validator(mode="after")
    def _something_to_match(self) -> ResourceHealthSignal:
        if self.state is None and not self.article:
            raise ValueError("give state or article (or both)")
        return self

    def _evaluate(self, obs: Observation) -> SignalResult:
        statuses = obs.health[:1] if self.state is not None else obs.health
        for status in statuses:
            if self.state is not None and str(status.get("availabilityState")) != self.state:
                continue
            article = str(status.get("articleId") or "")
            if self.article and not any(fnmatch.fnmatch(article.lower(), g.lower()) for g in self.article):
                continue
            if self.context and str(status.get("context") or "").lower() != self.context.lower():
                continue
            return SignalResult(self.id, True, health_line(status))
        if not obs.health:
            return SignalResult(self.id, False, "Resource Health reports nothing for the VM")
        return SignalResult(self.id, False, f"Resource Health now: {health_line(obs.health[0])}" + (
            f"; no event with article {', '.join(self.article)}" if self.article else ""))


def health_line(status: dict[str, Any]) -> str:
    """One Resource Health status as a line: state, when, why, and the article that explains it."""
    until = f" until {status['resolutionETA']}" if status.get("resolutionETA") and status.get("name") != "current" \
        else (" (still going on)" if status.get("name") == "current" and status.get("articleId") else "")
    why = "; ".join(str(status[k]) for k in ("context", "summary") if status.get(k))
    article = f" [article {status['articleId']}]" if status.get("articleId") else ""
    return f"{status.get('availabilityState')} since {status.get('occuredTime')}{until}: {why}{article}"


class BootDiagnosticsSignal(_SignalBase):
    """Holds when the VM's boot diagnostics is in the state ``problem`` names (``runbooks.boot_diagnostics``):
    ``missing`` (its storage account does not exist), ``premium`` (the account is Premium), ``unsupported`` (the
    account exists but boot diagnostics cannot use it: Premium, a redundancy or kind it refuses, another region),
    ``any`` (missing or unsupported), ``disabled``, ``managed``, or ``usable`` (enabled, managed or on a usable
    account)."""

    source: Literal["boot-diagnostics"]
    problem: Literal["missing", "premium", "unsupported", "any", "disabled", "managed", "usable"]
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "boot-diagnostics"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        from runbooks.boot_diagnostics import assess

        a = assess(obs)
        holds = {"missing": a.state == "missing", "premium": a.premium, "unsupported": a.state == "unusable",
                 "any": a.state in ("missing", "unusable"), "disabled": a.state == "disabled",
                 "managed": a.state == "managed", "usable": a.state in ("managed", "usable")}[self.problem]
        return SignalResult(self.id, holds, a.detail)


class ManagementLockSignal(_SignalBase):
    """Holds when an operation on the VM that a management lock refused (409 ScopeLocked) still stands and the
    lock that refused it still covers the VM; the detail names the lock (name, level, scope, owners, notes) and
    the operation it blocked (``runbooks.scope_locks``)."""

    source: Literal["management-lock"]
    still_locked: Literal[True] = True
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "locks", "activity-log"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        from runbooks import scope_locks

        found = scope_locks.blocked(obs)
        if found is not None:
            refusal, locks = found
            what = refusal.get("operation_display") or refusal.get("operation")
            return SignalResult(self.id, True, f"{'; '.join(scope_locks.describe(lk, obs.vm_id) for lk in locks)}; "
                                f"it refused {what} at {refusal.get('time')} (ScopeLocked)")
        standing = scope_locks.standing_refusals(obs)
        if standing:
            return SignalResult(self.id, False, f"{standing[0].get('operation')} was refused ScopeLocked at "
                                f"{standing[0].get('time')}, and no lock that refuses it covers the VM now")
        return SignalResult(self.id, False, "no standing operation refused by a lock")


class RequestedNicsSignal(_SignalBase):
    """Holds when a standing refused write of the VM asked for a NIC list (the activity log keeps its request body):
    the evidence names the NICs asked for (and the primary), the VM's NICs now, and what its size takes (NIC count,
    accelerated networking, from ``resourceSkus``). ``fits_size``: holds only when the NICs asked for do (true) or
    do not (false) fit the VM's size."""

    source: Literal["requested-nics"]
    fits_size: bool | None = None

    needs: ClassVar[frozenset[str]] = frozenset({"vm", "activity-log", "nics", "requested-nics", "skus"})

    def _evaluate(self, obs: Observation) -> SignalResult:
        from runbooks import sizing
        from runbooks.observe import requested_nics

        asked = requested_nics(obs)
        if asked is None:
            return SignalResult(self.id, False, "no standing refused write asked for a NIC list")
        op, refs = asked

        def name(rid: str) -> str:
            return rid.rstrip("/").rsplit("/", 1)[-1]

        wanted = ", ".join(name(str(r["id"])) + (" (primary)" if r.get("primary") else "") for r in refs) or "none"
        has = ", ".join(name(str(r.get("id", ""))) for r in obs.props.get("networkProfile", {})
                        .get("networkInterfaces") or []) or "none"
        accelerated = [name(str(r["id"])) for r in refs if dotted(
            obs.nics.get(str(r["id"]).lower()) or obs.resources.get(str(r["id"]).lower()) or {},
            "properties.enableAcceleratedNetworking")]
        size = sizing.catalogue(obs).get(sizing.current_size(obs).lower())
        fits = size is not None and len(refs) <= size.nics and (size.accelerated or not accelerated)
        what = (f"{size.name} takes {size.nics} NIC{'s' if size.nics != 1 else ''}, accelerated networking: "
                f"{'yes' if size.accelerated else 'no'}") if size else f"{sizing.current_size(obs)}: limits unknown"
        detail = (f"{op.get('operation_display') or op.get('operation')} at {op.get('time')} asked for NICs {wanted}"
                  + (f" (accelerated networking on {', '.join(accelerated)})" if accelerated else "")
                  + f"; the VM has {has}; {what}")
        holds = True if self.fits_size is None else fits == self.fits_size
        return SignalResult(self.id, holds, detail)


class MarketplaceSignal(_SignalBase):
    """The Marketplace plan of a refused create (its request body in the activity log) against its image and the
    plan's legal terms on the subscription (``runbooks.marketplace``). ``condition``: ``terms-not-accepted`` /
    ``terms-accepted``; ``plan-mismatch`` (any of the three below), ``plan-missing`` (the image is sold under a plan,
    the request gave none), ``plan-not-needed`` (the request gave a plan, the image has none) or ``plan-differs``."""

    source: Literal["marketplace"]
    condition: Literal["terms-not-accepted", "terms-accepted", "plan-mismatch", "plan-missing", "plan-not-needed",
                       "plan-differs"]
    needs: ClassVar[frozenset[str]] = frozenset({"vm", "activity-log", "marketplace"})
    without_vm: ClassVar[bool] = True

    def _evaluate(self, obs: Observation) -> SignalResult:
        from runbooks import marketplace

        holds, detail = marketplace.condition(obs, self.condition)
        return SignalResult(self.id, holds, detail)

    def listable(self, with_model: bool) -> bool:
        return False


def _signal_source(v: Any) -> str | None:
    if isinstance(v, dict):
        source = v.get("source")
        return source if isinstance(source, str) else None
    return getattr(v, "source", None)


AnySignal = (InstanceViewSignal | ProvisioningStateSignal | ActivityLogSignal | VmPropertySignal
             | RelatedResourceSignal | AvailabilitySetSignal | DiskLimitSignal | ResourceHealthSignal
             | BootDiagnosticsSignal | ManagementLockSignal | RequestedNicsSignal | MarketplaceSignal)
SIGNAL_SOURCES = ("instance-view", "provisioning-state", "activity-log", "vm-property", "related-resource",
                  "availability-set", "disk-limits", "resource-health", "boot-diagnostics", "management-lock",
                  "requested-nics", "marketplace")
Signal = Annotated[
    Annotated[InstanceViewSignal, Tag("instance-view")]
    | Annotated[ProvisioningStateSignal, Tag("provisioning-state")]
    | Annotated[ActivityLogSignal, Tag("activity-log")]
    | Annotated[VmPropertySignal, Tag("vm-property")]
    | Annotated[RelatedResourceSignal, Tag("related-resource")]
    | Annotated[AvailabilitySetSignal, Tag("availability-set")]
    | Annotated[DiskLimitSignal, Tag("disk-limits")]
    | Annotated[ResourceHealthSignal, Tag("resource-health")]
    | Annotated[BootDiagnosticsSignal, Tag("boot-diagnostics")]
    | Annotated[ManagementLockSignal, Tag("management-lock")]
    | Annotated[RequestedNicsSignal, Tag("requested-nics")]
    | Annotated[MarketplaceSignal, Tag("marketplace")],
    Discriminator(
        _signal_source,
        custom_error_type="unknown_signal_source",
        custom_error_message="source must be one of " + ", ".join(SIGNAL_SOURCES),
    ),
]
