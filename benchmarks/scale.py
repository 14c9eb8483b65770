"""Many Rollouts on one controller (issue 17; not a test, run it by hand):

    .venv/bin/python -m benchmarks.scale --rollouts 1000 [--bursts 100,1000] [--namespaces 10]

The sandbox and the controller run as separate processes. N canaries (1 or 2 replicas, steps
setWeight 20 / pause / 40 / pause / 60 / pause / 80 / pause; every tenth with an NGINX router, its two
Services and stable Ingress) are created, converge, are held idle, updated to a new
image (each walks to its first pause), and promoted in bursts. Printed:
- controller RSS idle and after convergence, and the slope per Rollout;
- time and controller CPU to converge;
- the controller's requests by verb and resource while everything is idle (10 s);
- per canary step (update -> first pause, and promote -> next pause): the controller's API writes by
  resource (Rollout status, ReplicaSet, Event counted apart) and its CPU;
- promote -> next step index and -> next pause, p50 / p99, for each burst size promoted at once.
The controller's requests are told from the benchmark's by their User-Agent (the sandbox counts per
client: GET /sandbox/request-counts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.harness import USER_AGENT, Watch, namespaced_name, sandbox_kubeconfig
from benchmarks.profile import profiled, report
from rollouts.cli.actions import promote_patches

REPO = Path(__file__).resolve().parents[1]
ROLLOUTS = "/apis/pyrollouts.io/v1alpha1"
# Four pauses: each Rollout can be promoted three times (one per burst) and still have a next pause.
STEPS: list[dict[str, Any]] = []
for weight in (20, 40, 60, 80):
    STEPS += [{"setWeight": weight}, {"pause": {}}]
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
IDLE_SECONDS = 10.0
WAIT_ALL_SECONDS = 0.2


@dataclass
class Process:
    """A process's resident memory and CPU time, read from /proc."""

    pid: int

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_SIZE

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@dataclass
class StepTimes:
    """When each Rollout was promoted, and when the watch first saw it at the next index and paused."""

    promoted: dict[str, float] = field(default_factory=dict)
    target: dict[str, int] = field(default_factory=dict)
    next_step: dict[str, float] = field(default_factory=dict)
    next_pause: dict[str, float] = field(default_factory=dict)

    def observe(self, when: float, _type: str, obj: dict[str, Any]) -> None:
        key = namespaced_name(obj)
        target = self.target.get(key)
        if target is None:
            return
        status = obj.get("status") or {}
        index = status.get("currentStepIndex")
        if isinstance(index, int) and index >= target and key not in self.next_step:
            self.next_step[key] = when
        if index == target + 1 and status.get("pauseConditions") and key not in self.next_pause:
            self.next_pause[key] = when


ROUTED_EVERY = 10  # every tenth Rollout has an NGINX router: two Services and a stable Ingress


def routed(name: str) -> dict[str, Any]:
    """The canary block's traffic routing of a routed Rollout."""
    return {"canaryService": f"{name}-canary", "stableService": f"{name}-stable",
            "trafficRouting": {"nginx": {"stableIngress": name}}}  # fmt: skip


def routing_objects(namespace: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, body) of the Services and the stable Ingress a routed Rollout names."""
    services = [
        ("/api/v1/namespaces/{ns}/services",
         {"metadata": {"name": f"{name}-{role}"}, "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}})
        for role in ("stable", "canary")
    ]  # fmt: skip
    backend = {"service": {"name": f"{name}-stable", "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    ingress = {"metadata": {"name": name}, "spec": {"rules": [{"host": f"{name}.example", "http": {"paths": [path]}}]}}
    objects = [*services, ("/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", ingress)]
    return [(collection.format(ns=namespace), body) for collection, body in objects]


def rollout(namespace: str, name: str, replicas: int, routing: bool = False) -> dict[str, Any]:
    labels = {"app": name}
    canary = {"maxSurge": 1, "maxUnavailable": 0, "steps": STEPS, **(routed(name) if routing else {})}
    return {
        "apiVersion": "pyrollouts.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}},
            "strategy": {"canary": canary},
        },
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def p50_p99(seconds: list[float]) -> str:
    return f"p50 {statistics.median(seconds):.2f} s p99 {percentile(seconds, 0.99):.2f} s"


def controller_requests(http: httpx.Client) -> Counter[tuple[str, str]]:
    """The sandbox's request counts of every client but the benchmark, by (verb, resource)."""
    counts: Counter[tuple[str, str]] = Counter()
    for row in http.get("/sandbox/request-counts").json():
        if row["client"] != USER_AGENT:
            counts[(row["verb"], row["resource"])] += row["count"]
    return counts


def wait_quiet(http: httpx.Client, quiet_for: float = 3.0, timeout: float = 300.0) -> None:
    """Wait until the controller has made no request for `quiet_for` seconds, so that a phase's counts
    hold none of the previous phase's trailing writes (pods turning ready after a pause was reached)."""
    deadline = time.monotonic() + timeout
    last = controller_requests(http)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet_for:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the controller was never quiet for {quiet_for} s in {timeout} s")
        time.sleep(0.5)
        now = controller_requests(http)
        if now != last:
            last, quiet_since = now, time.monotonic()


def writes_by_kind(delta: Counter[tuple[str, str]]) -> dict[str, int]:
    kinds = {"rollouts/status": "Rollout status", "rollouts": "Rollout", "replicasets": "ReplicaSet",
             "events": "Event"}  # fmt: skip
    out: Counter[str] = Counter()
    for (verb, resource), n in delta.items():
        if verb in ("create", "update", "patch", "delete"):
            out[kinds.get(resource, resource)] += n
    return dict(out)


def in_parallel(work: Callable[[Any], None], items: Iterable[Any], threads: int = 16) -> None:
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, items):
            pass


class Bench:
    def __init__(self, base: str, kubeconfig: Path, namespaces: list[str], count: int) -> None:
        self.base = base
        self.kubeconfig = kubeconfig
        self.local = threading.local()
        self.steps = StepTimes()
        self.names = [(namespaces[i % len(namespaces)], f"canary-{i}") for i in range(count)]
        self.rollouts = Watch(base, f"{ROLLOUTS}/rollouts", key=namespaced_name, keep_events=False,
                              on_event=self.steps.observe)  # fmt: skip

    def http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base, timeout=60, headers={"User-Agent": USER_AGENT})
            self.local.client = client
        return client

    def status(self, key: str) -> dict[str, Any]:
        return dict((self.rollouts.latest.get(key) or {}).get("status") or {})

    def count_where(self, check: Callable[[str, dict[str, Any]], bool], keys: Iterable[str]) -> int:
        return sum(1 for key in keys if check(key, self.status(key)))

    def wait_all(
        self, what: str, check: Callable[[str, dict[str, Any]], bool], keys: list[str], timeout: float
    ) -> float:
        started = time.monotonic()
        # Only the Rollouts not there yet are looked at again (each stays once there: Healthy, or paused
        # until promoted), and at most every WAIT_ALL_SECONDS: checking all N on every watch event cost
        # the benchmark O(N) per event, and at 10,000 its own CPU slowed the watch that times the steps.
        pending = list(keys)

        def arrived(_: Watch) -> bool:
            nonlocal pending
            pending = [key for key in pending if not check(key, self.status(key))]
            return not pending

        try:
            while not arrived(self.rollouts):
                if time.monotonic() - started > timeout:
                    raise TimeoutError(what)
                time.sleep(WAIT_ALL_SECONDS)
        except TimeoutError:
            done = self.count_where(check, keys)
            states = Counter(
                (s.get("phase"), s.get("currentStepIndex"), bool(s.get("pauseConditions")))
                for s in map(self.status, keys)
            )
            raise TimeoutError(
                f"{what}: {done} of {len(keys)} after {timeout:.0f} s; (phase, step, paused): {dict(states)}"
            ) from None
        return time.monotonic() - started

    def create(self, item: tuple[int, tuple[str, str]]) -> None:
        index, (namespace, name) = item
        routing = index % ROUTED_EVERY == 1
        for collection, obj in routing_objects(namespace, name) if routing else []:
            self.http().post(collection, json=obj).raise_for_status()
        body = rollout(namespace, name, 2 if index % 5 == 0 else 1, routing)
        self.http().post(f"{ROLLOUTS}/namespaces/{namespace}/rollouts", json=body).raise_for_status()

    def update(self, key: tuple[str, str]) -> None:
        namespace, name = key
        self.http().patch(
            f"{ROLLOUTS}/namespaces/{namespace}/rollouts/{name}",
            json=[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"}],
            headers={"Content-Type": "application/json-patch+json"},
        ).raise_for_status()

    def promote(self, key: str) -> None:
        namespace, name = key.split("/")
        with self.rollouts.cond:
            current = self.rollouts.latest[key]
            self.steps.target[key] = int(self.status(key)["currentStepIndex"]) + 1
            self.steps.next_step.pop(key, None)
            self.steps.next_pause.pop(key, None)
            self.steps.promoted[key] = time.monotonic()
        for patch in promote_patches(current):
            suffix = "/status" if patch.subresource == "status" else ""
            self.http().patch(
                f"{ROLLOUTS}/namespaces/{namespace}/rollouts/{name}{suffix}",
                json=patch.body,
                headers={"Content-Type": patch.content_type},
            ).raise_for_status()


def paused_at(index: int) -> Callable[[str, dict[str, Any]], bool]:
    return lambda _, s: s.get("currentStepIndex") == index and bool(s.get("pauseConditions"))


def healthy(_: str, status: dict[str, Any]) -> bool:
    return status.get("phase") == "Healthy"


@contextmanager
def controller_process(kubeconfig: Path, log: Path, extra: list[str]) -> Iterator[Process]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rollouts.main", "controller", "--kubeconfig", str(kubeconfig),
             "--metrics-port", "0", "--health-port", "0", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        try:
            yield Process(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def settled_rss(controller: Process) -> int:
    """The controller's RSS once it has stopped changing by more than 1 % over a second (at most 30 s)."""
    previous = controller.rss_bytes()
    for _ in range(30):
        time.sleep(1)
        current = controller.rss_bytes()
        if abs(current - previous) <= previous / 100:
            return current
        previous = current
    return previous


def report_step(label: str, delta: Counter[tuple[str, str]], steps: int, cpu: float) -> None:
    writes = writes_by_kind(delta)
    non_event = sum(n for kind, n in writes.items() if kind != "Event")
    shares = ", ".join(f"{kind} {n / steps:.2f}" for kind, n in sorted(writes.items()))
    print(f"{label}: writes per step {shares}; non-Event {non_event / steps:.2f}; "
          f"reads per step {sum(n for (v, _), n in delta.items() if v in ('get', 'list')) / steps:.2f}; "
          f"controller CPU per step {cpu / steps * 1000:.1f} ms")  # fmt: skip


def run(args: argparse.Namespace) -> None:
    count: int = args.rollouts
    bursts = [b for b in args.bursts if b <= count]
    namespaces = [f"scale-{i}" for i in range(args.namespaces)]
    with tempfile.TemporaryDirectory(prefix="pyrollouts-scale-") as tmp, sandbox_kubeconfig(0.05) as (kubeconfig, base):
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        subprocess.run(["kubectl", "apply", "-f", str(REPO / "crds")], env=env, check=True, capture_output=True)
        for namespace in namespaces:
            subprocess.run(["kubectl", "create", "namespace", namespace], env=env, check=True, capture_output=True)
        bench = Bench(base, kubeconfig, namespaces, count)
        bench.rollouts.start()
        http = bench.http()
        extra = [] if args.qps is None else ["--qps", str(args.qps), "--burst", str(args.burst)]
        with controller_process(kubeconfig, Path(tmp) / "controller.log", extra) as controller:
            keys = [f"{ns}/{name}" for ns, name in bench.names]
            # a tenth first: the RSS slope is taken between a tenth and all, past the start-up's own growth
            tenth = max(1, count // 10)
            cpu0 = controller.cpu_seconds()
            started = time.monotonic()
            in_parallel(bench.create, enumerate(bench.names[:tenth]))
            bench.wait_all("Healthy", healthy, keys[:tenth], timeout=120 + tenth * 0.2)
            paused_at_tenth = time.monotonic()
            rss_tenth = settled_rss(controller)
            started += time.monotonic() - paused_at_tenth  # the wait for a settled RSS is not convergence
            in_parallel(bench.create, list(enumerate(bench.names))[tenth:])
            bench.wait_all("Healthy", healthy, keys, timeout=120 + count * 0.6)
            converged = time.monotonic() - started
            converge_cpu = controller.cpu_seconds() - cpu0
            rss = settled_rss(controller)
            print(f"{count} Rollouts in {len(namespaces)} namespaces")
            print(f"converged in {converged:.1f} s, controller CPU {converge_cpu:.1f} s "
                  f"({converge_cpu / count * 1000:.1f} ms per Rollout)")  # fmt: skip
            slope = (rss - rss_tenth) / max(1, count - tenth)
            print(f"controller RSS: {rss_tenth / 2**20:.1f} MiB with {tenth} Rollouts, {rss / 2**20:.1f} MiB with "
                  f"{count}: slope {slope / 1024:.1f} KiB per Rollout")  # fmt: skip

            wait_quiet(http)
            before = controller_requests(http)
            time.sleep(IDLE_SECONDS)
            idle = +(controller_requests(http) - before)
            shown = ", ".join(f"{v} {r}: {n}" for (v, r), n in sorted(idle.items())) or "none"
            print(f"steady state, {IDLE_SECONDS:.0f} s idle: controller requests {shown}")

            profile = ExitStack()  # py-spy over the update and the promotions, not the convergence
            if args.profile:
                profile.enter_context(profiled(controller.pid, args.profile))
            before, cpu0 = controller_requests(http), controller.cpu_seconds()
            in_parallel(bench.update, bench.names)
            bench.wait_all("first pause", paused_at(1), keys, timeout=120 + count * 0.6)
            wait_quiet(http)  # a step's trailing writes (after the pause was reached) count for it
            report_step("update -> first pause", +(controller_requests(http) - before), count,
                        controller.cpu_seconds() - cpu0)  # fmt: skip

            promotions = Counter[str]()
            for burst in bursts:
                # the least promoted first, so every burst is `burst` Rollouts with a pause still ahead
                chosen = sorted(keys, key=lambda k: promotions[k])[:burst]
                promotions.update(chosen)
                wait_quiet(http)
                before, cpu0 = controller_requests(http), controller.cpu_seconds()
                in_parallel(bench.promote, chosen, threads=min(32, burst))

                def at_next_pause(key: str, status: dict[str, Any]) -> bool:
                    return paused_at(bench.steps.target[key] + 1)(key, status)

                bench.wait_all(f"burst {burst}", at_next_pause, chosen, timeout=120 + burst * 0.5)
                to_step = [bench.steps.next_step[k] - bench.steps.promoted[k] for k in chosen]
                to_pause = [bench.steps.next_pause[k] - bench.steps.promoted[k] for k in chosen]
                print(f"{burst} promoted at once among {count}: promote -> next step {p50_p99(to_step)}; "
                      f"-> next pause {p50_p99(to_pause)}")  # fmt: skip
                wait_quiet(http)
                report_step(f"  promote -> next pause ({burst})", +(controller_requests(http) - before), burst,
                            controller.cpu_seconds() - cpu0)  # fmt: skip
            print(f"controller RSS at the end: {controller.rss_bytes() / 2**20:.1f} MiB")
            profile.close()
            if args.profile:
                report(args.profile)
        bench.rollouts.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--bursts", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1000])
    parser.add_argument("--namespaces", type=int, default=10)
    # The controller's client-side limit (default: its own, 40/80) bounds how fast N Rollouts can move.
    parser.add_argument("--qps", type=float, default=None, help="the controller's --qps (0: no limit)")
    parser.add_argument("--burst", type=int, default=80, help="the controller's --burst, with --qps")
    parser.add_argument("--profile", type=Path, default=None,
                        help="py-spy the controller over the update and promotions into this file (raw format)")
    run(parser.parse_args())
    return 0


if __name__ == "__main__":
    sys.exit(main())
