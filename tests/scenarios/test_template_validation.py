"""Issue 4: a condition syntax error shows on the template itself when it is created (status condition
``Invalid`` with the field and the column, and a Warning Event), not at the first measurement; fixing
the template turns the condition to False. Namespaced and cluster-scoped templates (the controller in
the fixture watches cluster-wide)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fixtures.cluster import Cluster
from tests.fixtures.controller import ControllerProcess
from tests.fixtures.kube import json_object
from tests.fixtures.manifests import GROUP, VERSION

BROKEN = "result[0] >= )"
FIXED = "result[0] >= 1"


def template(kind: str, name: str, condition: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"metrics": [{
            "name": "up",
            "successCondition": condition,
            "provider": {"web": {"url": "http://127.0.0.1:1/x", "jsonPath": "{$.ok}"}},
        }]},
    }


def get(cluster: Cluster, ns: str, kind: str, name: str) -> dict[str, Any]:
    if kind == "ClusterAnalysisTemplate":
        return json_object(cluster.custom.get_cluster_custom_object(GROUP, VERSION, "clusteranalysistemplates", name))
    return json_object(cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "analysistemplates", name))


def wait_invalid(cluster: Cluster, ns: str, kind: str, name: str, status: str) -> dict[str, Any]:
    """The template once its ``Invalid`` condition has ``status`` for its current generation."""

    def check() -> dict[str, Any] | None:
        obj = get(cluster, ns, kind, name)
        st = obj.get("status") or {}
        conds = [c for c in st.get("conditions") or [] if c.get("type") == "Invalid"]
        current = st.get("observedGeneration") == obj["metadata"].get("generation")
        return obj if current and len(conds) == 1 and conds[0]["status"] == status else None

    return cluster.wait(f"{kind} {name}: Invalid={status}", check, timeout=15, interval=0.1)


def invalid(obj: dict[str, Any]) -> dict[str, Any]:
    [cond] = [c for c in obj["status"]["conditions"] if c["type"] == "Invalid"]
    return json_object(cond)


def invalid_events(cluster: Cluster, ns: str, kind: str, name: str) -> list[str]:
    items = cluster.plain(cluster.core.list_namespaced_event(ns).items)
    return [str(e["message"]) for e in items if e["reason"] == "InvalidSpec"
            and (e["involvedObject"].get("kind"), e["involvedObject"].get("name")) == (kind, name)]


@pytest.fixture(scope="module")
def ns(cluster: Cluster, controller: ControllerProcess | None) -> str:
    return cluster.new_namespace("tv")


@pytest.mark.parametrize("kind", ["AnalysisTemplate", "ClusterAnalysisTemplate"])
def test_syntax_error_is_a_condition_until_fixed(cluster: Cluster, ns: str, kind: str) -> None:
    name = f"rate-{kind.lower()}-{ns}" if kind == "ClusterAnalysisTemplate" else "rate"
    event_ns = ns if kind == "AnalysisTemplate" else "default"  # Events about cluster objects go to default
    cluster.apply(ns, template(kind, name, BROKEN))
    try:
        broken = wait_invalid(cluster, ns, kind, name, "True")
        cond = invalid(broken)
        assert cond["reason"] == "InvalidSpec"
        assert cond["message"].startswith("spec.metrics[0].successCondition:"), cond
        assert "column" in cond["message"], cond
        assert cond["lastTransitionTime"]
        assert broken["status"]["observedGeneration"] == broken["metadata"]["generation"]
        events = cluster.wait("an InvalidSpec Event", lambda: invalid_events(cluster, event_ns, kind, name), 10)
        assert events[0] == cond["message"]

        # No write loop: the status stays put (same resourceVersion) once written.
        rv = broken["metadata"]["resourceVersion"]
        time.sleep(1.0)
        again = get(cluster, ns, kind, name)
        assert again["metadata"]["resourceVersion"] == rv
        assert len(invalid_events(cluster, event_ns, kind, name)) == 1

        cluster.apply(ns, template(kind, name, FIXED))
        fixed = wait_invalid(cluster, ns, kind, name, "False")
        cond = invalid(fixed)
        assert (cond["reason"], cond["message"]) == ("Valid", "")
        assert fixed["metadata"]["generation"] > broken["metadata"]["generation"]
    finally:
        if kind == "ClusterAnalysisTemplate":
            cluster.kubectl("delete", "clusteranalysistemplate", name, "--ignore-not-found", check=False)
