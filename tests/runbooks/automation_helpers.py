"""Helpers for the Automation tests: a CPython 3.10 to import the wheel set with, and a file host standing in
for the blob container the service downloads packages from."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any

from armsim.automation.sandbox import find_python

AA_RG, ACCOUNT = "rg-ops", "aa-rca"  # where the deployed fixture puts the Automation account


def python310() -> str | None:
    return find_python()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class FileHost:
    """Serves a folder over HTTP on loopback (the wheel set's ``wheels_url``)."""

    def __init__(self, directory: Path) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet,
                                                                                       directory=str(directory)))
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
