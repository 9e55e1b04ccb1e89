"""Policy definitions (subscription scope) and assignments (any scope)."""

from __future__ import annotations

from armsim.http import ArmRequest, ArmResponse, ok
from armsim.responses import page
from armsim.state import Subscription, World


def _body(req: ArmRequest) -> dict[str, object]:
    data = req.json()
    return data if isinstance(data, dict) else {}


def put_definition(world: World, req: ArmRequest, subscriptionId: str, name: str) -> ArmResponse:
    return ok(world.sub(subscriptionId).policy.put_definition(name, _body(req)).to_dict(), status=201)


def _scope(world: World, scope: str) -> tuple[Subscription, str]:
    scope = "/" + scope.strip("/")
    return (world.sub(scope.split("/")[2]) if scope.lower().startswith("/subscriptions/") else world.default), scope


def put_assignment(world: World, req: ArmRequest, scope: str, name: str) -> ArmResponse:
    sub, scope = _scope(world, scope)
    return ok(sub.policy.put_assignment(scope, name, _body(req)).to_dict(), status=201)


def get_assignment(world: World, req: ArmRequest, scope: str, name: str) -> ArmResponse:
    from armsim.errors import NotFound

    sub, scope = _scope(world, scope)
    found = sub.policy.assignments.get(f"{scope}/providers/Microsoft.Authorization/policyAssignments/{name}".lower())
    if found is None:
        raise NotFound(f"The policy assignment '{name}' is not found.", code="PolicyAssignmentNotFound")
    return ok(found.to_dict())


def list_assignments(world: World, req: ArmRequest, subscriptionId: str) -> ArmResponse:
    items = list(world.sub(subscriptionId).policy.assignments.values())
    return page(req, items, lambda a: a.to_dict(), world.config.page_size)
