"""armsim.serve: run the emulator in the foreground."""

from __future__ import annotations

import shlex
import sys

from invoke import Collection, Context

from tasks._common import task


@task(help={"port": "port to listen on (0 = any free port)", "scenario": "scenario to seed at start (a playbook id "
            "seeds a VM that playbook fixes, with distractors)",
            "latency_scale": "how fast armsim's clock runs (1.0 = Azure's real durations)",
            "env_file": "write `export` lines pointing the toolkit at this armsim to this file (then `. FILE`)"})
def armsim_serve(c: Context, port: int = 0, scenario: str = "", latency_scale: float = 1.0, env_file: str = "") -> None:
    """Run armsim, the local HTTPS emulator of Azure Resource Manager, until Ctrl-C."""
    args = [sys.executable, "-m", "armsim", "serve", "--port", str(port), "--latency-scale", str(latency_scale)]
    if scenario:
        args += ["--scenario", scenario]
    if env_file:
        args += ["--env-file", env_file]
    c.run(shlex.join(args), pty=False)


armsim = Collection("armsim", serve=armsim_serve)
