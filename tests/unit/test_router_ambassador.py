"""The Ambassador router against recorded Mappings: the canary copy it creates (owned, weighted, the
canary Service), the weight it patches and reads back, weight 0 then delete at the end, and the
problems it names."""

from __future__ import annotations

from typing import Any

import yaml

from rollouts.sandbox.patches import merge_patch
from rollouts.traffic.ambassador import API_VERSION, AmbassadorRouter, canary_mapping_name
from rollouts.traffic.registry import RouterContext
from rollouts.traffic.router import ObjectRef
from tests.fixtures.routers import ROLLOUT_OWNER as OWNER
from tests.fixtures.routers import desired_traffic as desired

NS = "shop"

STABLE = yaml.safe_load(
    """
apiVersion: getambassador.io/v2
kind: Mapping
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {prefix: /web/, rewrite: /, service: "web-stable.shop:80", resolver: endpoint}
"""
)


def router(mappings: Any = ("web",)) -> AmbassadorRouter:
    config = {"mappings": list(mappings)}
    return AmbassadorRouter(RouterContext("ambassador", config, "web", NS, "web-stable", "web-canary", {}))


def ref(name: str) -> ObjectRef:
    return ObjectRef(API_VERSION, "Mapping", "mappings", NS, name)


def test_creates_an_owned_weighted_copy_for_the_canary() -> None:
    r = router()
    assert list(r.objects()) == [ref("web"), ref("web-canary")]
    result = r.reconcile(desired(20), {ref("web"): STABLE, ref("web-canary"): None}, OWNER)
    assert result.actual_canary_weight == 0 and result.problems == ()
    [write] = result.writes
    assert (write.ref, write.op) == (ref("web-canary"), "create")
    assert write.body == {
        "apiVersion": "getambassador.io/v2",
        "kind": "Mapping",
        "metadata": {"name": "web-canary", "namespace": NS, "ownerReferences": [OWNER.reference()]},
        "spec": {
            "prefix": "/web/",
            "rewrite": "/",
            "service": "web-canary.shop:80",
            "resolver": "endpoint",
            "weight": 20,
        },
    }


def test_patches_the_weight_and_at_zero_empties_then_deletes_the_copy() -> None:
    r = router()
    canary = r.reconcile(desired(20), {ref("web"): STABLE, ref("web-canary"): None}, OWNER).writes[0].body
    live = {ref("web"): STABLE, ref("web-canary"): canary}
    result = r.reconcile(desired(50), live, OWNER)
    assert result.actual_canary_weight == 20
    [write] = result.writes
    assert (write.op, write.body) == ("merge-patch", {"spec": {"weight": 50}})
    live[ref("web-canary")] = merge_patch(canary, write.body)
    assert r.reconcile(desired(50), live, OWNER).writes == ()

    back = r.reconcile(desired(0), live, OWNER)
    assert back.actual_canary_weight == 50
    assert [(w.op, w.body) for w in back.writes] == [("merge-patch", {"spec": {"weight": 0}})]
    live[ref("web-canary")] = merge_patch(live[ref("web-canary")], back.writes[0].body)
    gone = r.reconcile(desired(0), live, OWNER)
    assert gone.actual_canary_weight == 0
    assert [(w.ref, w.op) for w in gone.writes] == [(ref("web-canary"), "delete")]
    live[ref("web-canary")] = None
    assert r.reconcile(desired(0), live, OWNER).writes == ()  # nothing at weight 0 without a copy


def test_max_traffic_weight_becomes_percent() -> None:
    result = router().reconcile(desired(250, max_weight=1000), {ref("web"): STABLE, ref("web-canary"): None}, OWNER)
    body = result.writes[0].body
    assert body["spec"]["weight"] == 25
    again = router().reconcile(desired(250, max_weight=1000), {ref("web"): STABLE, ref("web-canary"): body}, OWNER)
    assert again.actual_canary_weight == 250 and again.writes == ()


def test_several_mappings_and_long_names() -> None:
    long = "m" * 250
    assert canary_mapping_name(long) == "m" * 246 + "-canary"
    other = {**STABLE, "metadata": {"name": "web-grpc", "namespace": NS}}
    r = router(["web", "web-grpc"])
    live = {ref("web"): STABLE, ref("web-canary"): None, ref("web-grpc"): other, ref("web-grpc-canary"): None}
    result = r.reconcile(desired(10), live, OWNER)
    assert [w.ref.name for w in result.writes] == ["web-canary", "web-grpc-canary"]


def test_problems_name_the_mapping_and_the_fix() -> None:
    missing = router().reconcile(desired(10), {ref("web"): None, ref("web-canary"): None}, OWNER)
    assert str(missing.problems[0]) == (
        'Mapping shop/web: spec.strategy.canary.trafficRouting.ambassador.mappings: Mapping "web" not found in '
        'namespace "shop": create it or fix the name'
    )
    weighted = {**STABLE, "spec": {**STABLE["spec"], "weight": 100}}
    result = router().reconcile(desired(10), {ref("web"): weighted, ref("web-canary"): None}, OWNER)
    assert 'Mapping shop/web: spec.weight: Mapping "web" sets a weight: remove it' in str(result.problems[0])
    elsewhere = {**STABLE, "spec": {**STABLE["spec"], "service": "other:80"}}
    result = router().reconcile(desired(10), {ref("web"): elsewhere, ref("web-canary"): None}, OWNER)
    assert "not to the stable Service \"web-stable\"" in str(result.problems[0]) and result.writes == ()
    theirs = {"metadata": {"name": "web-canary"}, "spec": {"weight": 30}}
    result = router().reconcile(desired(10), {ref("web"): STABLE, ref("web-canary"): theirs}, OWNER)
    assert 'canary Mapping "web-canary" already exists and is not owned by Rollout "web"' in str(result.problems[0])
    assert result.actual_canary_weight is None and result.writes == ()


def test_spec_problems() -> None:
    r = AmbassadorRouter(RouterContext("ambassador", {}, "web", NS, "web-stable", "web-canary", {}))
    assert [p.field for p in r.spec_problems()] == ["spec.strategy.canary.trafficRouting.ambassador.mappings"]
    assert not r.supports_header_routes() and not r.supports_mirror()
