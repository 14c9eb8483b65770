"""A real Prometheus server for the sandbox, the demo and the integration tests.

    with PrometheusServer(workdir, targets=[sandbox.metrics_url]) as prom:   # scrapes every second
        prom.wait_for('http_requests_total')        # the first scrape comes ~5 s after the start
        prom.query_by('sum(rate(http_requests_total[10s])) by (rollouts_pod_template_hash)',
                      'rollouts_pod_template_hash')

Prometheus 2.x applies its scrape targets at most every 5 s, so the first samples arrive about 5 s after
`/-/ready`; `rate(x[W])` divides by W, so it reads low until W seconds of samples exist.

Samples from the past go in before the start: `write_openmetrics` writes an OpenMetrics file (timestamps
in seconds, ending in `# EOF`) and `backfill` turns it into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` in the data directory the server then opens
(`PrometheusServer(..., backfill_files=[path])` does both).

Everything listens on 127.0.0.1; `stop()` sends SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

DEFAULT_BINARY = "prometheus"
DEFAULT_PROMTOOL = "promtool"


class PrometheusError(RuntimeError):
    """Prometheus or promtool could not do what was asked; the message carries their output."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str) -> str | None:
    """`name` on PATH, else Debian's /usr/bin/NAME, else None."""
    found = shutil.which(name)
    if found is None and os.access(f"/usr/bin/{name}", os.X_OK):
        found = f"/usr/bin/{name}"
    return found


def scrape_config(
    targets: Iterable[str], scrape_interval: str = "1s", evaluation_interval: str = "1s", job: str = "sandbox"
) -> dict[str, Any]:
    """A prometheus.yml scraping each target (a URL such as http://127.0.0.1:8000/metrics, or host:port)
    every `scrape_interval`. Targets with different paths get one scrape job each."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for target in targets:
        parts = urlsplit(target if "//" in target else "http://" + target)
        jobs.setdefault((parts.scheme or "http", parts.path or "/metrics"), []).append(parts.netloc)
    scrape_configs = [
        {
            "job_name": job if i == 0 else f"{job}-{i}",
            "scheme": scheme,
            "metrics_path": path,
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "static_configs": [{"targets": hosts}],
        }
        for i, ((scheme, path), hosts) in enumerate(sorted(jobs.items()))
    ]
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "scrape_configs": scrape_configs,
    }


@dataclass(frozen=True)
class Sample:
    """One OpenMetrics sample: full sample name (`http_requests_total`), labels, value, unix seconds."""

    name: str
    labels: Mapping[str, str]
    value: float
    timestamp: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(name: str, types: Mapping[str, str]) -> str:
    for family, kind in types.items():
        suffixes = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}.get(
            kind, ()
        )
        if name == family or any(name == family + s for s in suffixes):
            return family
    return name


def render_openmetrics(samples: Iterable[Sample], types: Mapping[str, str] | None = None) -> str:
    """OpenMetrics text: samples grouped by metric family, each series in time order, `# EOF` last.

    `types` maps a family name to its type (`{"http_requests": "counter"}` for `http_requests_total`
    samples; `{"http_request_duration_seconds": "histogram"}`); families not named are `unknown`.
    Timestamps are written in seconds, as OpenMetrics wants (promtool rejects milliseconds)."""
    types = dict(types or {})
    families: dict[str, list[Sample]] = {}
    for sample in samples:
        families.setdefault(_family(sample.name, types), []).append(sample)
    lines: list[str] = []
    for family in sorted(families):
        lines.append(f"# TYPE {family} {types.get(family, 'unknown')}")
        ordered = sorted(families[family], key=lambda s: (s.name, sorted(s.labels.items()), s.timestamp))
        for sample in ordered:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
            body = f"{sample.name}{{{labels}}}" if labels else sample.name
            lines.append(f"{body} {_number(sample.value)} {sample.timestamp:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def write_openmetrics(path: Path, samples: Iterable[Sample], types: Mapping[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_openmetrics(samples, types))
    return path


def counter_series(
    name: str,
    labels: Mapping[str, str],
    rate_per_second: float,
    start: float,
    end: float,
    step: float = 15.0,
    initial: float = 0.0,
) -> list[Sample]:
    """Samples of a counter growing at `rate_per_second` from `start` to `end` (unix seconds), one per
    `step`: a convenient shape for backfilled request counters."""
    count = int((end - start) // step) + 1
    return [
        Sample(name, labels, initial + rate_per_second * i * step, start + i * step) for i in range(max(count, 0))
    ]


def backfill(openmetrics_file: Path, data_dir: Path, promtool: str | None = None, timeout: float = 60) -> str:
    """`promtool tsdb create-blocks-from openmetrics FILE DATA_DIR`: blocks a Prometheus started on
    `data_dir` will serve. Returns promtool's output; raises PrometheusError when it fails."""
    binary = promtool or find_binary(DEFAULT_PROMTOOL)
    if binary is None:
        raise PrometheusError("promtool is not installed (Debian: apt-get install prometheus)")
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [binary, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics_file), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise PrometheusError(f"promtool failed ({result.returncode}): {result.stderr.strip() or result.stdout}")
    return result.stdout


@dataclass
class PrometheusServer:
    """A Prometheus process on a free loopback port, with its config and TSDB under `workdir`."""

    workdir: Path
    targets: Sequence[str] = ()
    port: int = 0
    binary: str | None = None
    promtool: str | None = None
    scrape_interval: str = "1s"
    retention: str = "1h"
    backfill_files: Sequence[Path] = ()
    extra_args: Sequence[str] = ()
    job: str = "sandbox"
    rule_files: Sequence[Path] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _backfilled: bool = field(default=False, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log_file(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        """Write the config, backfill, start the server and wait until `/-/ready` answers 200. A port
        chosen here that another process took meanwhile is replaced by a new free one (3 tries)."""
        chosen = not self.port
        for attempt in range(3):
            try:
                return self._start(timeout)
            except PrometheusError:
                if not chosen or attempt == 2 or "address already in use" not in self.log_tail().lower():
                    raise
                self.port = 0
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> PrometheusServer:
        binary = self.binary or find_binary(DEFAULT_BINARY)
        if binary is None:
            raise PrometheusError("prometheus is not installed (Debian: apt-get install prometheus)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = scrape_config(self.targets, self.scrape_interval, self.scrape_interval, job=self.job)
        if self.rule_files:  # evaluated every scrape interval; /api/v1/alerts and ALERTS show what fires
            config["rule_files"] = [str(path) for path in self.rule_files]
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        if not self._backfilled:
            for path in self.backfill_files:
                backfill(path, self.data_dir, self.promtool)
            self._backfilled = True
        self.port = self.port or free_port()
        command = [
            binary,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
            *self.extra_args,
        ]
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir
            )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise PrometheusError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.url}/-/ready").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise PrometheusError(f"prometheus not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited after `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP API

    def _api(self, path: str, params: Mapping[str, Any]) -> Any:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=dict(params), timeout=10.0)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {dict(params)}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (`[{"metric": {...}, "value": [ts, "v"]}, ...]`)."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._api("query", params)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else [data]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query's matrix (`[{"metric": {...}, "values": [[ts, "v"], ...]}, ...]`)."""
        data = self._api("query_range", {"query": expr, "start": start, "end": end, "step": step})
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_by(self, expr: str, label: str, at: float | None = None) -> dict[str, float]:
        """An instant query as `{value of label: float}`."""
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr, at)}

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 30.0,
        interval: float = 0.5,
    ) -> list[dict[str, Any]]:
        """Repeat an instant query until `predicate(result)` holds (default: not empty); the result."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise PrometheusError(f"{expr!r}: condition not met within {timeout}s (last result {result})")
            time.sleep(interval)

    def rule_groups(self) -> list[dict[str, Any]]:
        """`/api/v1/rules` groups: each rule's query, health (ok, err, unknown) and lastError."""
        groups: list[dict[str, Any]] = self._api("rules", {})["groups"]
        return groups

    def targets_health(self) -> list[dict[str, Any]]:
        """`/api/v1/targets` active targets (scrapeUrl, health, lastError)."""
        data = self._api("targets", {"state": "active"})
        targets: list[dict[str, Any]] = data["activeTargets"]
        return targets


__all__ = [
    "PrometheusError",
    "PrometheusServer",
    "Sample",
    "backfill",
    "counter_series",
    "find_binary",
    "free_port",
    "render_openmetrics",
    "scrape_config",
    "write_openmetrics",
]
