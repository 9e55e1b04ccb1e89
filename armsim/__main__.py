"""``python -m armsim serve [--host H] [--port P] [--state FILE] [--scenario NAME] [--latency-scale F] [--rbac]
[--no-throttling] [--env-file FILE]``"""

from __future__ import annotations

import argparse
import sys

from armsim.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m armsim", description="armsim: an HTTPS emulator of Azure "
                                     "Resource Manager for the Azure SDK.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve until SIGTERM/SIGINT; prints one JSON line with the endpoint")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 = any free port")
    serve.add_argument("--state", help="persist the world in this file (loaded at start if it exists)")
    serve.add_argument("--scenario", choices=sorted(SCENARIOS), help="seed this scenario at start")
    serve.add_argument("--latency-scale", type=float, default=1.0, help="multiply every operation's duration")
    serve.add_argument("--rbac", action="store_true", help="enforce role assignments (see /_armsim/rbac)")
    serve.add_argument("--no-throttling", action="store_true", help="turn ARM's request token buckets off")
    serve.add_argument("--env-file", help="write `export` lines for the toolkit and azure-identity here (`. FILE`)")
    args = parser.parse_args(argv)
    if args.latency_scale <= 0:
        parser.error("--latency-scale must be > 0")
    from armsim.server import ArmSim, serve_forever

    try:
        sim = ArmSim(host=args.host, port=args.port, state_file=args.state, latency_scale=args.latency_scale,
                     rbac=args.rbac, throttling=not args.no_throttling)
    except (OSError, ValueError) as e:
        print(f"armsim: cannot start: {e}", file=sys.stderr)
        return 2
    serve_forever(sim, args.scenario, args.env_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
