"""Cold start of the Automation runbook (prints figures; asserts nothing).

A fresh Python process runs what an Automation job runs: the Remediate-VM script's entry
(``runbooks.automation.entry.remediate_main``) with ``{"vm": "rg-redeploy/web-01"}`` (a dry run: it plans, writes
nothing) against armsim's ``redeploy-vm`` world, authenticated with the managed identity (armsim's endpoint, as the
sandbox's). armsim runs in its own process. The child notes, from its first line: the entry imported, the token
received, the first ARM answer (the job's first read of the VM), and the job's end.

Goal (issue 14): import + auth + first call (= the first ARM answer) <= 1 s without .pyc, in three set-ups:

* ``project .py only``: the project's sources without bytecode (a fresh copy, PYTHONDONTWRITEBYTECODE), the
  installed packages with the bytecode pip compiled when it installed them (pip's default);
* ``packages .py only``: the installed packages without bytecode too (a hard-linked copy of site-packages less
  its ``__pycache__``, run with ``python -S``), the standard library with its own: a sandbox whose installer does
  not compile the uploaded wheels (whether Automation's does is not documented);
* ``no .pyc at all``: PYTHONPYCACHEPREFIX points at an empty folder (the former bench). Python then reads bytecode
  only under that prefix: the standard library's and the packages' own ``__pycache__`` are ignored too, so
  everything, ``json`` and ``asyncio`` included, is compiled from source: no real sandbox starts that way.

Each mark is wall time (the machine may be shared: see the CPU column, the process's own CPU time, too).

``--before REV`` also times the project as it was at git revision REV (same set-ups, runs interleaved with the
current ones, so both see the same load).

    python bench/cold_start.py [--runs 5] [--before REV]
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
c0 = time.process_time()
def mark(key):
    if key not in marks:
        marks[key], marks[key + "_cpu"] = time.perf_counter() - t0, time.process_time() - c0

def send(self, request, **kwargs):
    response = _send(self, request, **kwargs)
    mark("token" if request.url.startswith(os.environ["IDENTITY_ENDPOINT"]) else "first_call")
    return response
RequestsTransport.send = send

from runbooks.automation.entry import remediate_main
mark("import")
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = remediate_main([json.dumps({"vm": sys.argv[1]})])
mark("job")
modules = sorted(m for m in ("azure.mgmt.compute", "azure.mgmt.network", "azure.mgmt.monitor") if m in sys.modules)
print(json.dumps({**marks, "exit": code, "sdk_modules": modules, "tail": out.getvalue().splitlines()[-1:]}))
"""
SETUPS = ("project .py only", "packages .py only", "no .pyc at all")
PHASES = (("import", "entry imported"), ("token", "token received"), ("first_call", "first ARM answer"),
          ("job", "dry-run job done"))


def _project_copy(source: Path, into: Path) -> Path:
    """The ``runbooks`` package of ``source`` (playbooks included), sources only, in ``into``."""
    shutil.copytree(source / "runbooks", into / "runbooks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _export(rev: str, into: Path) -> Path:
    """The project's ``runbooks`` and ``playbooks`` folders as they were at git revision ``rev``."""
    archive = subprocess.run(["git", "archive", rev, "runbooks", "playbooks"], cwd=REPO, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _site_packages_copy(into: Path) -> Path:
    """The installed packages without their bytecode: hard links (a copy where links are refused)."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(site, into, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), copy_function=link)
    return into


def _run(env: dict[str, str], setup: str, packages: Path, source: Path = REPO) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        child_env = {**env, "PYTHONDONTWRITEBYTECODE": "1", "RUNBOOKS_HOME": str(Path(tmp) / "home")}
        child_env.pop("PYTHONPYCACHEPREFIX", None)
        flags = []
        if setup == "no .pyc at all":
            child_env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pyc")
        elif setup == "packages .py only":
            flags, child_env["PYTHONPATH"] = ["-S"], str(packages)  # no site: only the copy is importable
        cwd = _project_copy(source, Path(tmp))  # ``python -c`` puts the cwd first on sys.path: this copy loads
        out = subprocess.run([sys.executable, *flags, "-c", CHILD, VM], cwd=cwd, text=True, capture_output=True,
                             env=child_env, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes to time per set-up (medians printed)")
    parser.add_argument("--before", metavar="REV", help="also time the project as it was at this git revision")
    args = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-m", "armsim", "serve", "--scenario", SCENARIO, "--no-throttling"],
                              cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(server.stdout.readline())  # type: ignore[union-attr]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOKS_", "AZURE_", "IDENTITY_"))}
        env.update(RUNBOOKS_ARM_ENDPOINT=info["endpoint"], RUNBOOKS_CA_BUNDLE=info["ca_bundle"],
                   AZURE_SUBSCRIPTION_ID=info["subscription_id"], IDENTITY_ENDPOINT=info["identity_endpoint"],
                   IDENTITY_HEADER=info["identity_header"], REQUESTS_CA_BUNDLE=info["ca_bundle"])
        with tempfile.TemporaryDirectory(prefix="cold-start-site-") as site:
            packages = _site_packages_copy(Path(site) / "site-packages")
            before = _export(args.before, Path(site)) if args.before else None
            results: dict[str, list[dict[str, object]]] = {}
            for setup in SETUPS:
                for _ in range(args.runs):
                    results.setdefault(setup, []).append(_run(env, setup, packages))
                    if before is not None:
                        results.setdefault(f"{setup}, at {args.before}", []).append(_run(env, setup, packages, before))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"cold start of the Remediate-VM runbook ({VM}, dry run), seconds from the process's first line; "
          f"median of {args.runs} fresh processes (min-max), wall and CPU:")
    for name, figures in results.items():
        print(f"  {name}:")
        for key, label in PHASES:
            values = [float(f[key]) for f in figures]  # type: ignore[arg-type]
            cpu = statistics.median(float(f[key + "_cpu"]) for f in figures)  # type: ignore[arg-type]
            print(f"    {label:<18} {statistics.median(values):6.3f}   ({min(values):.3f}-{max(values):.3f})"
                  f"   CPU {cpu:6.3f}")
        first = statistics.median(float(f["first_call"]) for f in figures)  # type: ignore[arg-type]
        print(f"    import + auth + first call {first:.3f} s (target <= {TARGET_S:g} s: "
              f"{'met' if first <= TARGET_S else 'MISSED'}); SDK modules loaded by the job's end: "
              f"{', '.join(figures[0]['sdk_modules']) or 'none'} (exit {figures[0]['exit']}: {figures[0]['tail']})")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
