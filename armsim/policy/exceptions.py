"""Azure Policy's refusal of a write."""

from __future__ import annotations

import json

from armsim.errors import ArmError


class RequestDisallowedByPolicy(ArmError):
    """403, as ARM answers a write a policy assignment with the deny effect rules out. The message names the
    assignment and definition in ``Policy identifiers`` (its shape as quoted in public issues)."""

    status, code = 403, "RequestDisallowedByPolicy"

    def __init__(self, resource_name: str, assignment: dict[str, str], definition: dict[str, str]) -> None:
        identifiers = json.dumps([{"policyAssignment": assignment, "policyDefinition": definition}],
                                 separators=(",", ":"))
        super().__init__(f"Resource '{resource_name}' was disallowed by policy. Policy identifiers: "
                         f"'{identifiers}'.")
