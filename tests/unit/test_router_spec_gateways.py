"""InvalidSpec for the APISIX, Ambassador and App Mesh routers: the Rollout's own mistakes, named by
field before anything is written."""

from __future__ import annotations

from typing import Any

import pytest

from rollouts.model.spec import RolloutSpec
from rollouts.model.validation import validate_rollout
from tests.fixtures.routed_world import routed_rollout

HEADER = {"setHeaderRoute": {"name": "beta", "match": [{"headerName": "X", "headerValue": {"exact": "1"}}]}}
MIRROR = {"setMirrorRoute": {"name": "beta", "match": [{"path": {"prefix": "/"}}], "percentage": 10}}
APPMESH = {
    "virtualService": {"name": "web"},
    "virtualNodeGroup": {"canaryVirtualNodeRef": {"name": "c"}, "stableVirtualNodeRef": {"name": "s"}},
}
BETA = [{"name": "beta"}]


@pytest.mark.parametrize(
    ("routing", "steps", "field", "text"),
    [
        ({"ambassador": {"mappings": ["web"]}, "managedRoutes": BETA}, [HEADER], "steps[0].setHeaderRoute",
         "traffic router ambassador cannot do setHeaderRoute"),
        ({"appMesh": APPMESH, "managedRoutes": BETA}, [HEADER], "steps[0].setHeaderRoute",
         "traffic router appMesh cannot do setHeaderRoute"),
        ({"apisix": {"route": {"name": "web"}}, "managedRoutes": BETA}, [MIRROR], "steps[0].setMirrorRoute",
         "traffic router apisix cannot do setMirrorRoute"),
        ({"ambassador": {}}, [], "trafficRouting.ambassador.mappings", "Required value"),
        ({"apisix": {"route": {}}}, [], "trafficRouting.apisix.route.name", "Required value"),
        ({"appMesh": {"virtualService": {"name": "web"}}}, [], "virtualNodeGroup.canaryVirtualNodeRef.name",
         "Required value"),
        ({"apisix": {"route": {"name": "web"}}, "managedRoutes": [{"name": "web"}]}, [],
         "trafficRouting.managedRoutes", "a header route needs another name"),
    ],
)
def test_invalid_traffic_routing(routing: dict[str, Any], steps: list[dict[str, Any]], field: str, text: str) -> None:
    ro = RolloutSpec.parse(routed_rollout(routing, steps))
    errors = validate_rollout(ro, ro.template)
    assert any(field in e and text in e for e in errors), errors


def test_the_new_routers_are_valid_as_argo_writes_them() -> None:
    for routing in (
        {"apisix": {"route": {"name": "web", "rules": ["web"]}}, "managedRoutes": BETA},
        {"ambassador": {"mappings": ["web", "web-grpc"]}},
        {"appMesh": {**APPMESH, "virtualService": {"name": "web", "routes": ["primary"]}}},
    ):
        ro = RolloutSpec.parse(routed_rollout(routing, [{"setWeight": 20}, {"pause": {}}]))
        assert validate_rollout(ro, ro.template) == []
