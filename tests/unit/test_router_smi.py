"""The SMI router against recorded TrafficSplit objects: the split it creates, the patches it writes,
the weight it reads back (integer and quantity weights), and a split someone else owns."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from rollouts.sandbox.patches import merge_patch as merge
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import ObjectRef, WeightDestination
from rollouts.traffic.smi import API_VERSION, SmiRouter
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"

CREATED_AT_20 = yaml.safe_load(
    """
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: web-split
  namespace: shop
  ownerReferences:
  - apiVersion: pyrollouts.io/v1alpha1
    kind: Rollout
    name: web
    uid: uid-1
    controller: true
    blockOwnerDeletion: true
spec:
  service: web
  backends:
  - {service: web-canary, weight: 20}
  - {service: web-stable, weight: 80}
"""
)


def router(**config: Any) -> SmiRouter:
    routing = {"smi": config}
    return SmiRouter(RouterContext("smi", config, "web", NS, "web-stable", "web-canary", routing))


def ref(name: str = "web-split") -> ObjectRef:
    return ObjectRef(API_VERSION, "TrafficSplit", "trafficsplits", NS, name)


def test_defaults_name_the_rollout_and_the_stable_service() -> None:
    r = router()
    assert list(r.objects()) == [ref("web")]
    [write] = r.reconcile(desired(0), {ref("web"): None}, OWNER).writes
    assert write.body["spec"] == {
        "service": "web-stable",
        "backends": [{"service": "web-canary", "weight": 0}, {"service": "web-stable", "weight": 100}],
    }


def test_creates_the_split_owned_by_the_rollout() -> None:
    result = router(rootService="web", trafficSplitName="web-split").reconcile(desired(20), {ref(): None}, OWNER)
    assert result.actual_canary_weight == 0 and result.problems == ()
    [write] = result.writes
    assert (write.op, write.ref) == ("create", ref())
    assert write.body == CREATED_AT_20


def test_patches_the_backends_and_reads_the_weight_back() -> None:
    live = copy.deepcopy(CREATED_AT_20)
    r = router(rootService="web", trafficSplitName="web-split")
    result = r.reconcile(desired(50), {ref(): live}, OWNER)
    assert result.actual_canary_weight == 20
    [write] = result.writes
    assert write.op == "merge-patch"
    assert write.body == {
        "spec": {"backends": [{"service": "web-canary", "weight": 50}, {"service": "web-stable", "weight": 50}]}
    }
    after = merge(live, write.body)
    again = r.reconcile(desired(50), {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 50


def test_quantity_weights_and_max_traffic_weight() -> None:
    live = copy.deepcopy(CREATED_AT_20)
    live["apiVersion"] = "split.smi-spec.io/v1alpha1"
    live["spec"]["backends"] = [
        {"service": "web-canary", "weight": "250m"},
        {"service": "web-stable", "weight": "750m"},
    ]
    r = router(rootService="web", trafficSplitName="web-split")
    assert r.reconcile(desired(250, max_weight=1000), {ref(): live}, OWNER).actual_canary_weight == 250


def test_a_split_someone_else_owns_is_not_touched() -> None:
    theirs = copy.deepcopy(CREATED_AT_20)
    theirs["metadata"]["ownerReferences"] = []
    result = router(rootService="web", trafficSplitName="web-split").reconcile(desired(50), {ref(): theirs}, OWNER)
    assert result.writes == ()
    [problem] = result.problems
    assert problem.field == "spec.strategy.canary.trafficRouting.smi.trafficSplitName"
    assert 'TrafficSplit "web-split" already exists and is not owned by Rollout "web"' in problem.message


def test_smi_cannot_route_by_header_or_mirror() -> None:
    r = router()
    assert not r.supports_header_routes() and not r.supports_mirror()
    routing: dict[str, Any] = {"smi": {}}
    missing = SmiRouter(RouterContext("smi", {}, "web", NS, "web-stable", "", routing))
    assert [p.field for p in missing.spec_problems()] == ["spec.strategy.canary.canaryService"]


def test_an_experiment_templates_service_takes_its_share_from_the_stable_and_goes_when_it_ends() -> None:
    r = router(trafficSplitName="web-split", rootService="web")
    baseline = WeightDestination("exp-baseline", "ccc", 10)
    running = desired(20, additional=(baseline, WeightDestination("exp-canary", "ddd", 10)))
    [write] = r.reconcile(running, {ref(): copy.deepcopy(CREATED_AT_20)}, OWNER).writes
    after = merge(copy.deepcopy(CREATED_AT_20), write.body)
    assert after["spec"]["backends"] == [
        {"service": "web-canary", "weight": 20},
        {"service": "web-stable", "weight": 60},
        {"service": "exp-baseline", "weight": 10},
        {"service": "exp-canary", "weight": 10},
    ]
    again = r.reconcile(running, {ref(): after}, OWNER)
    assert again.writes == () and again.actual_canary_weight == 20
    # the experiment ended: the split is back to the canary and the stable only
    [back] = r.reconcile(desired(20), {ref(): after}, OWNER).writes
    assert merge(after, back.body)["spec"] == CREATED_AT_20["spec"]
