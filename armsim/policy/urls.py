"""Microsoft.Authorization policy routes."""

from __future__ import annotations

from armsim.policy import responses as r
from armsim.routing import Router

A = "Microsoft.Authorization/"


def register(router: Router) -> None:
    sub = "/subscriptions/{subscriptionId}/providers/Microsoft.Authorization"
    router.add("PUT", sub + "/policyDefinitions/{name}", r.put_definition, A + "policyDefinitions/write")
    router.add("GET", sub + "/policyAssignments", r.list_assignments, A + "policyAssignments/read")
    one = "/{scope:path}/providers/Microsoft.Authorization/policyAssignments/{name}"
    router.add("PUT", one, r.put_assignment, A + "policyAssignments/write")
    router.add("GET", one, r.get_assignment, A + "policyAssignments/read")
