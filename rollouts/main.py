"""`pyrollouts`: the sandbox cluster, the controller and the demo, as subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from rollouts import __version__


def _sandbox(args: argparse.Namespace) -> int:
    from rollouts.sandbox.cluster import serve_forever

    if args.traffic_rps < 0:
        print("pyrollouts sandbox: --traffic-rps must be 0 or more", file=sys.stderr)
        return 2
    faults = None
    if args.faults is not None:
        from rollouts.sandbox.faults import Faults, FaultSpecError, parse_rates

        try:
            faults = Faults(parse_rates(args.faults), args.faults_seed, args.faults_agent or ())
        except FaultSpecError as exc:
            print(f"pyrollouts sandbox: {exc}", file=sys.stderr)
            return 2
    asyncio.run(
        serve_forever(
            Path(args.kubeconfig).resolve(),
            args.port,
            args.ready_after,
            args.traffic_rps,
            args.metrics_port,
            tls=args.tls,
            authorization=args.authorization,
            faults=faults,
        )
    )
    return 0


def _listen(args: argparse.Namespace, what: str, default_port: int) -> Any:
    """The address of /metrics or /healthz: --X-addr, else --X-port (0: off) on all interfaces."""
    from rollouts.controller.listen import Listen, parse_listen

    addr, port = getattr(args, f"{what}_addr"), getattr(args, f"{what}_port")
    if addr is not None:
        return parse_listen(addr, f"--{what}-addr")
    if port is not None:
        return Listen("0.0.0.0", port, f"--{what}-port") if port else None
    return Listen("0.0.0.0", default_port, f"--{what}-addr")


def _controller(args: argparse.Namespace) -> int:
    from rollouts.controller.kubeconfig import KubeconfigError
    from rollouts.controller.leader import Timing
    from rollouts.controller.listen import ListenError
    from rollouts.controller.preflight import UntrustedApiServer
    from rollouts.controller.process import Options, run_controller
    from rollouts.model.durations import parse_go_duration

    try:
        options = Options(
            kubeconfig=args.kubeconfig,
            namespaces=args.namespace or [],
            metrics=_listen(args, "metrics", 8090),
            health=_listen(args, "health", 8080),
            leader_elect=args.leader_elect,
            election_namespace=args.leader_election_namespace,
            timing=Timing(
                parse_go_duration(args.leader_election_lease_duration),
                parse_go_duration(args.leader_election_renew_deadline),
                parse_go_duration(args.leader_election_retry_period),
            ),
            instance_id=args.instance_id,
            notifications_namespace=args.notifications_namespace,
            verbose=args.verbose,
            qps=args.qps,
            burst=args.burst,
        )
        if args.qps < 0 or args.burst < 1:
            raise ValueError(f"--qps must be 0 or more and --burst 1 or more (got {args.qps} and {args.burst})")
    except ValueError as exc:
        print(f"pyrollouts controller: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(run_controller(options))
    except (KubeconfigError, ListenError, UntrustedApiServer) as exc:
        print(f"pyrollouts controller: {exc}", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rollouts.demo import run_demo

    return run_demo(keep_running=args.keep)


def _add_listen_flags(parser: argparse.ArgumentParser, what: str, paths: str, port: int) -> None:
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument(
        f"--{what}-addr",
        metavar="HOST:PORT",
        help=f"where to serve {paths} (default :{port}, all interfaces; port 0: a free one; 0: off)",
    )
    flags.add_argument(f"--{what}-port", type=int, metavar="N", help=f"same as --{what}-addr :N (0 turns it off)")


def _add_election_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--leader-elect",
        action="store_true",
        help="run several replicas: only the holder of a coordination.k8s.io Lease reconciles",
    )
    parser.add_argument(
        "--leader-election-namespace",
        metavar="NS",
        help="namespace of the Lease (default: the kubeconfig context's or the service account's)",
    )
    for name, default in (("lease-duration", "15s"), ("renew-deadline", "10s"), ("retry-period", "2s")):
        parser.add_argument(f"--leader-election-{name}", default=default, metavar="DURATION", help=f"default {default}")
    parser.add_argument(
        "--instance-id",
        metavar="ID",
        help="handle only Rollouts and AnalysisRuns labelled pyrollouts.io/controller-instance-id: ID "
        "(default: only those without the label)",
    )


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
        "--tls",
        action="store_true",
        help="serve HTTPS with a certificate of a CA made at start; the kubeconfig carries the CA "
        "(certificate-authority-data)",
    )
    sandbox.add_argument(
        "--authorization",
        choices=["open", "rbac"],
        default="open",
        help="open (default): every request is allowed; rbac: bearer tokens are authenticated (the "
        "kubeconfig's user is a cluster admin, ServiceAccount tokens come from `kubectl create token`) and "
        "Roles, ClusterRoles and their bindings are enforced (implies HTTPS, as with --tls)",
    )
    sandbox.add_argument(
        "--faults",
        metavar="RATE",
        help="inject API faults: this share of requests (0..1) answer 500, 503, 429 with Retry-After, or 409 "
        "(updates and patches), and as many watch streams are cut at random; per verb: get=0.1,patch=0.2 "
        "(verbs: get, list, watch, create, update, patch, delete, deletecollection; a bare rate is the default)",
    )
    sandbox.add_argument(
        "--faults-seed", type=int, default=None, metavar="N", help="seed of the fault draws (default: random)"
    )
    sandbox.add_argument(
        "--faults-agent",
        action="append",
        metavar="PREFIX",
        help="inject faults only into requests whose User-Agent starts with PREFIX (repeatable; default: all), "
        "e.g. pyrollouts-controller and kopf for the controller alone",
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
    _add_listen_flags(controller, "metrics", "/metrics", 8090)
    _add_listen_flags(controller, "health", "/healthz and /readyz", 8080)
    _add_election_flags(controller)
    controller.add_argument(
        "--notifications-namespace",
        metavar="NS",
        help="namespace of the pyrollouts-notification-configmap ConfigMap and pyrollouts-notification-secret "
        "Secret (default: the kubeconfig context's or the service account's)",
    )
    controller.add_argument(
        "--qps",
        type=float,
        default=40.0,
        help="requests per second the controller sends the API server, after --burst (default 40, as Argo "
        "Rollouts; 0: no limit; watches are not counted)",
    )
    controller.add_argument(
        "--burst", type=int, default=80, help="requests sent at once before --qps applies (default 80, as Argo)"
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
