"""Cold start of the Automation runbook (prints figures; asserts nothing).

A fresh Python process runs what an Automation job runs: the Remediate-VM script's entry
(``runbooks.automation.entry.remediate_main``) with ``{"vm": "rg-redeploy/web-01"}`` (a dry run: it plans, writes
nothing) against armsim's ``redeploy-vm`` world, authenticated with the managed identity (armsim's endpoint, as the
sandbox's). armsim runs in its own process. The child notes, from its first line: the entry imported, the token
received, the first ARM answer (the job's first read of the VM), and the job's end.

Goal (issue 14): import + auth + first call (= the first ARM answer) <= 1 s without .pyc, in two set-ups:

* ``project .py only``: the project's sources without bytecode (a fresh copy, PYTHONDONTWRITEBYTECODE), the
  installed packages with the bytecode pip compiled when it installed them (pip's default; whether Automation's
  installer compiles the uploaded wheels too is not documented);
* ``no .pyc at all``: PYTHONPYCACHEPREFIX points at an empty folder. Python then reads bytecode only under that
  prefix: the installed packages' own ``__pycache__`` is ignored and everything is compiled from source.

    python bench/cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
SCENARIO, VM = "redeploy-vm", "rg-redeploy/web-01"
CHILD = r"""
import contextlib, io, json, os, sys, time
t0 = time.perf_counter()
marks = {}
from azure.core.pipeline.transport import RequestsTransport  # azure.core: imported by every path of the job

_send = RequestsTransport.send
def send(self, request, **kwargs):
    response = _send(self, request, **kwargs)
    key = "token" if request.url.startswith(os.environ["IDENTITY_ENDPOINT"]) else "first_call"
    marks.setdefault(key, time.perf_counter() - t0)
    return response
RequestsTransport.send = send

from runbooks.automation.entry import remediate_main
marks["import"] = time.perf_counter() - t0
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = remediate_main([json.dumps({"vm": sys.argv[1]})])
marks["job"] = time.perf_counter() - t0
modules = sorted(m for m in ("azure.mgmt.compute", "azure.mgmt.network", "azure.mgmt.monitor") if m in sys.modules)
print(json.dumps({**marks, "exit": code, "sdk_modules": modules, "tail": out.getvalue().splitlines()[-1:]}))
"""
PHASES = (("import", "entry imported"), ("token", "token received"), ("first_call", "first ARM answer"),
          ("job", "dry-run job done"))


def _project_copy(into: Path) -> Path:
    """The project's ``runbooks`` package (playbooks included), sources only, in ``into``."""
    shutil.copytree(REPO / "runbooks", into / "runbooks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _run(env: dict[str, str], no_pyc_at_all: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        child_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "RUNBOOKS_HOME": str(Path(tmp) / "home")}
        if no_pyc_at_all:
            child_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pyc")
        else:
            child_env.pop("PYTHONPYCACHEPREFIX", None)
        cwd = _project_copy(Path(tmp))  # ``python -c`` puts the cwd first on sys.path: this copy is what loads
        out = subprocess.run([sys.executable, "-c", CHILD, VM], cwd=cwd, text=True, capture_output=True,
                             env=child_env, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes to time per set-up (medians printed)")
    args = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--scenario", SCENARIO, "--no-throttling"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
        env.update(RUNBOOKS_ARM_ENDPOINT=info["endpoint"], RUNBOOKS_CA_BUNDLE=info["ca_bundle"],
                   AZURE_SUBSCRIPTION_ID=info["subscription_id"], IDENTITY_ENDPOINT=info["identity_endpoint"],
                   IDENTITY_HEADER=info["identity_header"], REQUESTS_CA_BUNDLE=info["ca_bundle"])
        results = {name: [_run(env, no_pyc) for _ in range(args.runs)]
                   for name, no_pyc in (("project .py only", False), ("no .pyc at all", True))}
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cold start of the Remediate-VM runbook ({VM}, dry run), seconds from the process's first line; "
          f"median of {args.runs} fresh processes (min-max):")
    for name, figures in results.items():
        print(f"  {name}:")
        for key, label in PHASES:
            values = [float(f[key]) for f in figures]  # type: ignore[arg-type]
            print(f"    {label:<18} {statistics.median(values):6.3f}   ({min(values):.3f}-{max(values):.3f})")
        first = statistics.median(float(f["first_call"]) for f in figures)  # type: ignore[arg-type]
        print(f"    import + auth + first call {first:.3f} s (target <= {TARGET_S:g} s: "
              f"{'met' if first <= TARGET_S else 'MISSED'}); SDK modules loaded by the job's end: "
              f"{', '.join(figures[0]['sdk_modules']) or 'none'} (exit {figures[0]['exit']}: {figures[0]['tail']})")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
