"""Tokens and the managed-identity endpoint (App Service / Azure Automation protocol).

``ManagedIdentityCredential`` sees ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER`` and calls
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…`` with header ``X-IDENTITY-HEADER``.
armsim answers with a JWT-shaped token whose ``oid`` claim is the principal that RBAC checks.
The endpoint is plain HTTP on loopback, as on an Automation sandbox.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# The principal a token from the identity endpoint carries when no client_id is given.
SYSTEM_IDENTITY = "11111111-aaaa-4bbb-8ccc-000000000001"
TOKEN_LIFETIME = 3600 * 4


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(principal: str, tenant: str, *, resource: str = "https://management.azure.com",
               lifetime: int = TOKEN_LIFETIME) -> tuple[str, int]:
    """An unsigned JWT-shaped access token for ``principal`` and its expiry (epoch seconds)."""
    exp = int(time.time()) + lifetime
    header = _b64(json.dumps({"typ": "JWT", "alg": "none"}).encode())
    claims = {"aud": resource, "iss": f"https://sts.windows.net/{tenant}/", "oid": principal,
              "tid": tenant, "exp": exp, "appid": principal, "ver": "1.0"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.armsim", exp


def principal_of(token: str) -> str | None:
    """The ``oid`` of a token armsim issued, or None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    oid = claims.get("oid") if isinstance(claims, dict) else None
    return oid if isinstance(oid, str) and oid else None


class StaticTokenCredential:
    """A TokenCredential that hands out armsim tokens for one principal (for tests and the demo)."""

    def __init__(self, principal: str = "armsim-user", tenant: str = "armsim-tenant") -> None:
        self.principal, self.tenant = principal, tenant

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        token, exp = make_token(self.principal, self.tenant)
        return AccessToken(token, exp)


class IdentityServer:
    """Serves the managed-identity token endpoint on a loopback HTTP port, in a daemon thread."""

    def __init__(self, tenant: str, secret: str, host: str = "127.0.0.1") -> None:
        self.tenant, self.secret = tenant, secret
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall

            def do_GET(self) -> None:
                status, body = outer.token_response(self.path, dict(self.headers.items()))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="armsim-identity", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/msi/token"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def token_response(self, target: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        lower = {k.lower(): v for k, v in headers.items()}
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if parts.path.rstrip("/") != "/msi/token":
            return 404, {"statusCode": 404, "message": f"No such endpoint: {parts.path}"}
        if lower.get("x-identity-header") != self.secret:
            return 401, {"statusCode": 401, "message": "The X-IDENTITY-HEADER header is missing or wrong."}
        resource = query.get("resource")
        if not resource:
            return 400, {"statusCode": 400, "message": "The 'resource' parameter is required."}
        principal = query.get("client_id") or query.get("object_id") or query.get("mi_res_id") or SYSTEM_IDENTITY
        token, exp = make_token(principal, self.tenant, resource=resource.rstrip("/"))
        return 200, {"access_token": token, "expires_on": str(exp), "resource": resource,
                     "token_type": "Bearer", "client_id": principal}
