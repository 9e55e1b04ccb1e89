"""ARM errors as classes carrying the wire code, HTTP status and message.

Every handler failure raises one of these; the server turns it into ARM's envelope
``{"error": {"code", "message", "target"?, "details"?}}`` so the real SDK raises its real
exceptions (409 → ``ResourceExistsError``, 404 → ``ResourceNotFoundError``, …).

    ArmError                      base: status + code + message
      BadRequest (400)            InvalidParameter, InvalidRequestContent, MissingApiVersionParameter,
                                  InvalidResourceId, NicInUse, PublicIPAddressCannotBeDeleted,
                                  VMMarketplaceInvalidInput, InvalidFilter …
      AuthenticationFailed (401)  InvalidAuthenticationToken
      AuthorizationFailed (403)
      NotFound (404)              ResourceNotFound, ResourceGroupNotFound, SubscriptionNotFound,
                                  InvalidResourceType, ParentResourceNotFound, OperationNotFound
      MethodNotAllowed (405)
      Conflict (409)              OperationNotAllowed, ConflictingUserInput, PropertyChangeNotAllowed,
                                  ScopeLocked
      TooManyRequests (429)
      InternalServerError (500)
Provider-specific messages are built next to the provider (``armsim/compute/exceptions.py``).
Key Vault's data plane has its own envelope and codes (``innererror``; BadParameter, Unauthorized with
its challenge, Forbidden/ForbiddenByRbac, SecretNotFound): ``armsim/keyvault/exceptions.py``.
"""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error ARM would answer with; ``status`` and ``code`` are exactly what goes on the wire."""

    status: int = 400
    code: str = "BadRequest"

    def __init__(
        self,
        message: str,
        *,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.details = details
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def error_dict(self) -> dict[str, Any]:
        """The inner ``error`` object (also used for async ``Failed`` operations)."""
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target is not None:
            err["target"] = self.target
        if self.details:
            err["details"] = self.details
        return err

    def body(self) -> dict[str, Any]:
        return {"error": self.error_dict()}


class BadRequest(ArmError):
    status, code = 400, "BadRequest"


class InvalidParameter(BadRequest):
    code = "InvalidParameter"


class InvalidRequestContent(BadRequest):
    code = "InvalidRequestContent"


class MissingApiVersionParameter(BadRequest):
    code = "MissingApiVersionParameter"

    def __init__(self) -> None:
        super().__init__("The api-version query parameter (?api-version=) is required for all requests.")


class InvalidResourceId(BadRequest):
    code = "InvalidResourceId"


class InvalidFilter(BadRequest):
    code = "InvalidFilter"


class AuthenticationFailed(ArmError):
    status, code = 401, "AuthenticationFailed"


class InvalidAuthenticationToken(AuthenticationFailed):
    code = "InvalidAuthenticationToken"


class AuthorizationFailed(ArmError):
    status, code = 403, "AuthorizationFailed"

    def __init__(self, principal: str, action: str, scope: str) -> None:
        super().__init__(
            f"The client '{principal}' with object id '{principal}' does not have authorization to perform "
            f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently "
            "granted, please refresh your credentials."
        )
        self.action = action


class LinkedAuthorizationFailed(ArmError):
    """The caller may write the resource but not use a resource it references (ARM's linked access check)."""

    status, code = 403, "LinkedAuthorizationFailed"

    def __init__(self, principal: str, action: str, scope: str, linked: list[tuple[str, str]]) -> None:
        actions = ",".join(a for a, _ in linked)
        scopes = ",".join(s for _, s in linked)
        super().__init__(
            f"The client '{principal}' with object id '{principal}' has permission to perform action '{action}' on "
            f"scope '{scope}'; however, it does not have permission to perform action(s) '{actions}' on the linked "
            f"scope(s) '{scopes}' (respectively) or the linked scope(s) are invalid."
        )
        self.action = action


class NotFound(ArmError):
    status, code = 404, "NotFound"


class ResourceNotFound(NotFound):
    code = "ResourceNotFound"

    def __init__(self, resource_type: str, name: str, resource_group: str) -> None:
        super().__init__(
            f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        )


class ResourceGroupNotFound(NotFound):
    code = "ResourceGroupNotFound"

    def __init__(self, resource_group: str) -> None:
        super().__init__(f"Resource group '{resource_group}' could not be found.")


class SubscriptionNotFound(NotFound):
    code = "SubscriptionNotFound"

    def __init__(self, subscription: str) -> None:
        super().__init__(f"The subscription '{subscription}' could not be found.")


class InvalidResourceType(NotFound):
    code = "InvalidResourceType"


class ParentResourceNotFound(NotFound):
    code = "ParentResourceNotFound"

    def __init__(self, parent: str) -> None:
        super().__init__(
            f"Can not perform requested operation on nested resource. Parent resource '{parent}' not found."
        )


class OperationNotFound(NotFound):
    code = "OperationNotFound"


class MethodNotAllowed(ArmError):
    status, code = 405, "MethodNotAllowed"


class Conflict(ArmError):
    status, code = 409, "Conflict"


class OperationNotAllowed(Conflict):
    code = "OperationNotAllowed"


class ConflictingUserInput(Conflict):
    code = "ConflictingUserInput"


class PropertyChangeNotAllowed(Conflict):
    code = "PropertyChangeNotAllowed"

    def __init__(self, prop: str) -> None:
        super().__init__(f"Changing property '{prop}' is not allowed.", target=prop)


class ScopeLocked(Conflict):
    code = "ScopeLocked"

    def __init__(self, resource_id: str, operation: str, lock_scopes: list[str]) -> None:
        scopes = ",".join(f"'{s}'" for s in lock_scopes)
        super().__init__(
            f"The scope '{resource_id}' cannot perform {operation} operation because following scope(s) "
            f"are locked: {scopes}. Please remove the lock and try again."
        )


class TooManyRequests(ArmError):
    status, code = 429, "TooManyRequests"


class InternalServerError(ArmError):
    status, code = 500, "InternalServerError"


class ReadOnlyDisabledSubscription(ArmError):
    """A write to a disabled subscription (its billing lapsed, a spending limit, a cancelled trial): read-only. The
    message's opening is quoted in public issues; the status is armsim's choice (409, a conflict with its state)."""

    status, code = 409, "ReadOnlyDisabledSubscription"

    def __init__(self, subscription_id: str) -> None:
        super().__init__(f"The subscription '{subscription_id}' is disabled and therefore marked as read only. You "
                         "cannot perform any write actions on this subscription until it is re-enabled.")
