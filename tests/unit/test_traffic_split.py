"""Pure traffic split: which pods a Service's requests reach, with what weight, and how each pod answers."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.sandbox.traffic_split import (
    DEFAULT_LATENCY_MS,
    PodBehaviour,
    pod_behaviour,
    pod_template_hash,
    ready_pods,
    split,
    version_shares,
)

SERVICE = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}}}


def pod(
    name: str, version: str, *, ready: bool = True, app: str = "web", sandbox: dict[str, str] | None = None
) -> dict[str, Any]:
    """A pod of `app` at `version`, with `sandbox` as its `sandbox.pyrollouts.io/<key>` annotations (`_` -> `-`)."""
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": app, "rollouts-pod-template-hash": version},
            "annotations": {f"sandbox.pyrollouts.io/{k.replace('_', '-')}": v for k, v in (sandbox or {}).items()},
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def endpoints(*names: str, not_ready: tuple[str, ...] = ()) -> dict[str, Any]:
    def address(name: str) -> dict[str, Any]:
        return {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "namespace": "default", "name": name}}

    subset: dict[str, Any] = {"ports": [{"port": 80}]}
    if names:
        subset["addresses"] = [address(n) for n in names]
    if not_ready:
        subset["notReadyAddresses"] = [address(n) for n in not_ready]
    return {"metadata": {"name": "web"}, "subsets": [subset]}


def by_name(*pods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in pods}


def test_ready_endpoints_share_equally() -> None:
    pods = by_name(pod("s1", "stable"), pod("s2", "stable"), pod("c1", "canary"), pod("c2", "canary", ready=False))
    weights = split(SERVICE, endpoints("s2", "c1", "s1", not_ready=("c2",)), pods)
    assert [(p["metadata"]["name"], w) for p, w in weights] == [("c1", 1 / 3), ("s1", 1 / 3), ("s2", 1 / 3)]
    assert version_shares(weights) == pytest.approx({"stable": 2 / 3, "canary": 1 / 3})


def test_endpoints_pointing_at_missing_or_terminating_pods_are_skipped() -> None:
    gone = pod("s2", "stable")
    gone["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    weights = split(SERVICE, endpoints("s1", "s2", "s3"), by_name(pod("s1", "stable"), gone))
    assert [p["metadata"]["name"] for p, _ in weights] == ["s1"]
    assert weights[0][1] == 1.0


def test_no_ready_endpoint_means_no_traffic() -> None:
    assert split(SERVICE, endpoints(not_ready=("s1",)), by_name(pod("s1", "stable", ready=False))) == []
    assert split(SERVICE, {"metadata": {"name": "web"}, "subsets": []}, {}) == []


def test_without_endpoints_the_selector_and_readiness_decide() -> None:
    pods = by_name(
        pod("s1", "stable"), pod("c1", "canary"), pod("x", "other", app="db"), pod("n", "stable", ready=False)
    )
    assert [p["metadata"]["name"] for p in ready_pods(SERVICE, None, pods)] == ["c1", "s1"]
    selectorless = {"metadata": {"name": "ext"}, "spec": {}}
    assert split(selectorless, None, pods) == []


def test_behaviour_from_annotations() -> None:
    assert pod_behaviour(pod("a", "v")) == PodBehaviour(0.0, DEFAULT_LATENCY_MS / 1000, 0.0)
    tuned = pod("a", "v", sandbox={"error_rate": "0.05", "latency_ms": "120", "latency_jitter_ms": "15"})
    assert pod_behaviour(tuned) == PodBehaviour(0.05, 0.12, 0.015)


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({"error_rate": "2"}, PodBehaviour(1.0, 0.01, 0.0)),
        ({"error_rate": "-1"}, PodBehaviour(0.0, 0.01, 0.0)),
        ({"error_rate": "lots"}, PodBehaviour(0.0, 0.01, 0.0)),
        ({"error_rate": "nan"}, PodBehaviour(0.0, 0.01, 0.0)),
        ({"latency_ms": "-5"}, PodBehaviour(0.0, 0.0, 0.0)),
        ({"latency_ms": "120ms"}, PodBehaviour(0.0, 0.01, 0.0)),
        ({"latency_jitter_ms": " 3 "}, PodBehaviour(0.0, 0.01, 0.003)),
    ],
)
def test_unreadable_or_out_of_range_annotations(annotations: dict[str, str], expected: PodBehaviour) -> None:
    assert pod_behaviour(pod("a", "v", sandbox=annotations)) == expected


def test_version_label() -> None:
    assert pod_template_hash(pod("a", "abc")) == "abc"
    deployment_pod = {"metadata": {"name": "d", "labels": {"pod-template-hash": "xyz"}}}
    assert pod_template_hash(deployment_pod) == "xyz"
    assert pod_template_hash({"metadata": {"name": "bare"}}) == ""
