"""Microsoft.Authorization management locks: CanNotDelete blocks deletes, ReadOnly blocks every write,
at the scope of the lock and everything under it (subscription → resource group → resource)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armsim.errors import ScopeLocked
from armsim.http import ArmRequest
from armsim.routing import Route
from armsim.state import Collections

if TYPE_CHECKING:
    from armsim.state import Subscription, World

LEVELS = ("CanNotDelete", "ReadOnly")


@dataclass
class Lock:
    id: str
    name: str
    scope: str
    level: str
    notes: str | None = None
    owners: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        props: dict[str, Any] = {"level": self.level}
        if self.notes:
            props["notes"] = self.notes
        if self.owners:
            props["owners"] = self.owners
        return {"id": self.id, "name": self.name, "type": "Microsoft.Authorization/locks", "properties": props}


class LockState(Collections):
    MODELS = {"locks": Lock}

    def __init__(self, sub: Subscription) -> None:
        self.sub = sub
        self.locks: dict[str, Lock] = {}

    def covering(self, resource_id: str) -> list[Lock]:
        """Locks at this id or any scope above it."""
        target = resource_id.lower().rstrip("/") + "/"
        return [lk for lk in self.locks.values() if target.startswith(lk.scope.lower().rstrip("/") + "/")]

    def at(self, scope: str) -> list[Lock]:
        return [lk for lk in self.locks.values() if lk.scope.lower().rstrip("/") == scope.lower().rstrip("/")]


def target_of(req: ArmRequest, route: Route) -> str:
    """The resource id a request acts on: its path, less a trailing action segment."""
    path = req.path.rstrip("/")
    return path.rsplit("/", 1)[0] if route.action.endswith("/action") else path


def check_locks(world: World, req: ArmRequest, route: Route) -> None:
    if route.action.startswith("Microsoft.Authorization/") or route.lro_poll:
        return
    parts = req.path.split("/")
    if len(parts) < 3 or parts[1].lower() != "subscriptions" or parts[2].lower() not in world.subscriptions:
        return
    sub = world.sub(parts[2])
    target = target_of(req, route)
    blocking = [lk for lk in sub.locks.covering(target) if route.kind == "delete" or lk.level == "ReadOnly"]
    if blocking:
        raise ScopeLocked(target, "delete" if route.kind == "delete" else "write", [lk.scope for lk in blocking])
