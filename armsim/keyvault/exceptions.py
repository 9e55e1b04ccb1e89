"""Key Vault data-plane errors: Key Vault's own codes and messages, in its envelope
``{"error": {"code", "message", "innererror"?: {"code"}}}`` (``innererror`` in lower case, as Key Vault
writes it). The SDK maps 401 → ClientAuthenticationError, 404 → ResourceNotFoundError, the rest →
HttpResponseError with ``error.code`` set."""

from __future__ import annotations

from typing import Any

from armsim.errors import ArmError

VAULT_RESOURCE = "https://vault.azure.net"


class KeyVaultError(ArmError):
    """An error Key Vault would answer with; ``inner`` is the ``innererror.code`` when it has one."""

    inner: str | None = None

    def error_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return err


class BadParameter(KeyVaultError):
    status, code = 400, "BadParameter"


class Unauthorized(KeyVaultError):
    """401 with Key Vault's challenge: where to get a token (the vault's tenant) and for which resource."""

    status, code = 401, "Unauthorized"

    def __init__(self, message: str, tenant: str) -> None:
        challenge = f'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="{VAULT_RESOURCE}"'
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(KeyVaultError):
    status, code = 403, "Forbidden"


class ForbiddenByRbac(Forbidden):
    inner = "ForbiddenByRbac"

    def __init__(self, *, principal: str, tenant: str, action: str, scope: str, vault: str, location: str) -> None:
        super().__init__(
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            "propagation time.\r\n"
            f"Caller: appid={principal};oid={principal};iss=https://sts.windows.net/{tenant}/\r\n"
            f"Action: '{action}'\r\n"
            f"Resource: '{scope.lower()}'\r\n"
            "Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\n"
            f"Vault: {vault};location={location}\r\n"
        )


class SecretDisabled(Forbidden):
    inner = "SecretDisabled"

    def __init__(self) -> None:
        super().__init__("Operation get is not allowed on a disabled secret.")


class NotFound(KeyVaultError):
    status, code = 404, "NotFound"


class SecretNotFound(NotFound):
    code = "SecretNotFound"

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"{name}/{version}" if version else name
        super().__init__(
            f"A secret with (name/id) {what} was not found in this key vault. If you recently deleted this secret "
            "you may be able to recover it using the correct recovery command. For help resolving this issue, "
            "please see https://go.microsoft.com/fwlink/?linkid=2125182"
        )


class MethodNotAllowed(KeyVaultError):
    status, code = 405, "MethodNotAllowed"


def missing_token(tenant: str) -> Unauthorized:
    return Unauthorized("AKV10000: Request is missing a Bearer or PoP token.", tenant)


def invalid_audience(found: str, tenant: str) -> Unauthorized:
    return Unauthorized(f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: {found}.", tenant)


def invalid_token(tenant: str) -> Unauthorized:
    return Unauthorized("The access token is malformed or was not issued by armsim.", tenant)


def missing_api_version() -> BadParameter:
    return BadParameter("The 'api-version' query parameter is required.")


def unknown_api_version(version: str, latest: str) -> BadParameter:
    return BadParameter(f"The specified version ({version}) is not recognized. Consider using the latest supported "
                        f"version ({latest}).")


def invalid_name(name: str) -> BadParameter:
    return BadParameter(f"The request URI contains an invalid name: {name}")
