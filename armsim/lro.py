"""Long-running operations: a latency model, the operation book and the critical-path accounting.

An operation starts when a handler accepts a write; it completes when the world's clock passes its
end time (``OperationBook.due``), and a provider-registered *completer* applies its effect. Effects
are data (``kind`` + ``target`` + ``args``), so the book can be saved with ``--state``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from armsim.state import World

# Seconds each operation takes at latency scale 1.0, in the proportions Azure shows.
DEFAULT_LATENCIES: dict[str, float] = {
    "vm.create": 90.0,
    "vm.update": 30.0,
    "vm.delete": 60.0,
    "vm.start": 40.0,
    "vm.deallocate": 60.0,
    "vm.powerOff": 30.0,
    "vm.restart": 60.0,
    "vm.redeploy": 180.0,
    "vm.boot": 45.0,  # from "running" until the guest's VM agent reports Ready
    "extension.create": 60.0,
    "extension.delete": 30.0,
    "disk.create": 10.0,
    "disk.update": 5.0,
    "disk.delete": 5.0,
    "snapshot.create": 20.0,
    "snapshot.delete": 5.0,
    "image.create": 60.0,
    "image.delete": 10.0,
    "network.create": 3.0,
    "network.delete": 5.0,
    "resourceGroup.delete": 30.0,
}

Completer = Callable[["World", "Operation"], None]
COMPLETERS: dict[str, Completer] = {}


def completer(kind: str) -> Callable[[Completer], Completer]:
    """Register the function that applies the effect of operations of ``kind`` when they finish."""

    def register(fn: Completer) -> Completer:
        COMPLETERS[kind] = fn
        return fn

    return register


@dataclass
class Operation:
    """One asynchronous operation, as the operation-status endpoints report it."""

    id: str
    subscription: str
    kind: str
    target: str
    namespace: str  # "compute" | "disk" | "network" | "resources": decides the status URL shape
    location: str
    start: float
    end: float
    resources: list[str]
    args: dict[str, Any] = field(default_factory=dict)
    status: str = "InProgress"
    error: dict[str, Any] | None = None
    fail_with: dict[str, Any] | None = None  # injected by a fault rule: fail at completion with this error
    output: Any = None
    internal: bool = False  # not reachable through an operation-status URL (e.g. guest boot)
    activity: dict[str, Any] | None = None  # activity-log context: operation name, caller, correlation id

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    @property
    def succeeded(self) -> bool:
        return self.status == "Succeeded"


class OperationBook:
    """All operations of a world, in start order."""

    def __init__(self) -> None:
        self.ops: dict[str, Operation] = {}

    def start(
        self, world: World, *, subscription: str, kind: str, target: str, namespace: str, location: str,
        resources: list[str] | None = None, args: dict[str, Any] | None = None, internal: bool = False,
        duration: float | None = None,
    ) -> Operation:
        now = world.clock()
        seconds = world.config.latency(kind) if duration is None else duration
        op = Operation(
            id=str(uuid.uuid4()), subscription=subscription, kind=kind, target=target, namespace=namespace,
            location=location.replace(" ", "").lower(), start=now, end=now + seconds,
            resources=sorted({r.lower() for r in [target, *(resources or [])]}),
            args=dict(args or {}), internal=internal,
        )
        self.ops[op.id] = op
        return op

    def get(self, op_id: str) -> Operation | None:
        return self.ops.get(op_id.lower()) or self.ops.get(op_id)

    def due(self, now: float) -> list[Operation]:
        return sorted((o for o in self.ops.values() if not o.done and o.end <= now), key=lambda o: o.end)

    def pending(self) -> list[Operation]:
        return [o for o in self.ops.values() if not o.done]

    def critical_path(self, since: float = 0.0) -> dict[str, Any]:
        """The longest chain of operations that had to run one after another.

        Two operations are chained when the second started after the first ended and they touch a
        common resource (a VM and its disks, a snapshot and its source disk…). Operations on unrelated
        resources could have overlapped, so they do not add up. The chain's length is a lower bound
        for the wall time of any client that ran the same operations.
        """
        ops = sorted((o for o in self.ops.values() if o.start >= since and o.done), key=lambda o: o.start)
        best: dict[str, tuple[float, list[str]]] = {}
        by_resource: dict[str, list[Operation]] = {}
        for op in ops:
            prev: tuple[float, list[str]] = (0.0, [])
            for r in op.resources:
                for other in by_resource.get(r, ()):
                    if other.end <= op.start + 1e-9 and best[other.id][0] > prev[0]:
                        prev = best[other.id]
            best[op.id] = (prev[0] + (op.end - op.start), [*prev[1], op.id])
            for r in op.resources:
                by_resource.setdefault(r, []).append(op)
        if not best:
            return {"seconds": 0.0, "operations": [], "count": 0}
        length, chain = max(best.values(), key=lambda b: b[0])
        return {
            "seconds": length,
            "operations": [{"kind": self.ops[i].kind, "target": self.ops[i].target,
                            "seconds": self.ops[i].end - self.ops[i].start} for i in chain],
            "count": len(ops),
        }
