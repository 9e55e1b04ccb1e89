"""URL routing: ``(method, path template) → handler``, case-insensitive like ARM.

Templates use ``{name}`` for one path segment. Every route says how ARM would account for it
(``kind`` = read, write or delete, for throttling and the request log) and which RBAC action it
needs, e.g. ``Microsoft.Compute/virtualMachines/start/action``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from armsim.errors import InvalidResourceType, MethodNotAllowed
from armsim.http import ArmRequest, ArmResponse

Kind = Literal["read", "write", "delete"]
Handler = Callable[..., ArmResponse]


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    action: str
    kind: Kind
    lro_poll: bool = False
    schema: Any = None  # shape of the JSON body (armsim.schema), checked before the handler runs


_SEGMENT = re.compile(r"\{(\w+)(:path)?\}")


def compile_template(template: str) -> re.Pattern[str]:
    """``{name}`` matches one path segment; ``{name:path}`` matches one or more (a scope)."""
    out, pos = "", 0
    for m in _SEGMENT.finditer(template):
        pattern = ".+?" if m.group(2) else "[^/]+"
        out += re.escape(template[pos : m.start()]) + f"(?P<{m.group(1)}>{pattern})"
        pos = m.end()
    out += re.escape(template[pos:])
    return re.compile(f"^{out}/?$", re.IGNORECASE)


class Router:
    """Holds the routes of every provider; ``resolve`` finds the handler for a request."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, method: str, template: str, handler: Handler, action: str, kind: Kind | None = None,
        *, lro_poll: bool = False, schema: Any = None,
    ) -> None:
        k: Kind = kind or ("read" if method == "GET" else "delete" if method == "DELETE" else "write")
        self.routes.append(Route(method, template, compile_template(template), handler, action, k, lro_poll, schema))

    def resolve(self, req: ArmRequest) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for route in self.routes:
            m = route.regex.match(req.path)
            if not m:
                continue
            path_matched = True
            if route.method == req.method or (req.method == "HEAD" and route.method == "GET"):
                return route, m.groupdict()
        if path_matched:
            raise MethodNotAllowed(f"The requested resource does not support http method '{req.method}'.")
        raise InvalidResourceType(_unknown_type_message(req))


def _unknown_type_message(req: ArmRequest) -> str:
    parts = [p for p in req.path.split("/") if p]
    lower = [p.lower() for p in parts]
    if "providers" in lower:
        i = len(lower) - 1 - lower[::-1].index("providers")
        namespace = parts[i + 1] if i + 1 < len(parts) else ""
        rtype = parts[i + 2] if i + 2 < len(parts) else ""
        return (
            f"The resource type '{rtype}' could not be found in the namespace '{namespace}' "
            f"for api version '{req.api_version}'."
        )
    return f"The request URI '{req.path}' does not match any resource type or operation ARM knows."
