"""`pyrollouts`: the sandbox cluster, the controller and the demo, as subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from rollouts import __version__


def _sandbox(args: argparse.Namespace) -> int:
    from rollouts.sandbox.cluster import serve_forever

    if args.traffic_rps < 0:
        print("pyrollouts sandbox: --traffic-rps must be 0 or more", file=sys.stderr)
        return 2
    asyncio.run(
        serve_forever(
            Path(args.kubeconfig).resolve(),
            args.port,
            args.ready_after,
            args.traffic_rps,
            args.metrics_port,
            args.authorization,
        )
    )
    return 0


def _controller(args: argparse.Namespace) -> int:
    from rollouts.controller.kubeconfig import KubeconfigError
    from rollouts.controller.operator import run_controller

    try:
        asyncio.run(
            run_controller(args.kubeconfig, args.namespace or [], args.metrics_port, args.health_port, args.verbose)
        )
    except KubeconfigError as exc:
        print(f"pyrollouts controller: {exc}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rollouts.demo import run_demo

    return run_demo(keep_running=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyrollouts", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pyrollouts {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    sandbox = sub.add_parser("sandbox", help="run the local sandbox cluster in the foreground")
    sandbox.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig (once the API answers)")
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument(
        "--ready-after", type=float, default=0.5, help="seconds before a simulated pod turns Ready (default 0.5)"
    )
    sandbox.add_argument(
        "--traffic-rps",
        type=float,
        default=0.0,
        metavar="N",
        help="simulated requests per second to each routing object (Ingress pair, VirtualService, TrafficSplit, "
        "HTTPRoute) and each other Service with ready endpoints (default 0: off)",
    )
    sandbox.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="N",
        help="port on 127.0.0.1 for the simulated traffic's /metrics (0: a free one; default: a free one "
        "when --traffic-rps is set, else none)",
    )
    sandbox.add_argument(
        "--authorization",
        choices=["open", "rbac"],
        default="open",
        help="open (default): every request is allowed; rbac: bearer tokens are authenticated (the "
        "kubeconfig's user is a cluster admin, ServiceAccount tokens come from `kubectl create token`) and "
        "Roles, ClusterRoles and their bindings are enforced",
    )
    sandbox.set_defaults(func=_sandbox)

    controller = sub.add_parser("controller", help="run the Rollout controller in the foreground")
    controller.add_argument(
        "--kubeconfig",
        help="kubeconfig to use (default: every file of $KUBECONFIG merged as kubectl merges them, then "
        "~/.kube/config, then the in-cluster service account)",
    )
    controller.add_argument(
        "--namespace", action="append", metavar="NS", help="watch only this namespace (repeatable; default: all)"
    )
    controller.add_argument(
        "--metrics-port", type=int, default=8090, help="port for /metrics (default 8090; 0 turns it off)"
    )
    controller.add_argument(
        "--health-port", type=int, default=8080, help="port for /healthz (default 8080; 0 turns it off)"
    )
    controller.set_defaults(func=_controller)

    demo = sub.add_parser("demo", help="start a sandbox and walk through what it offers")
    demo.add_argument("--keep", action="store_true", help="keep the sandbox running after the tour")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
