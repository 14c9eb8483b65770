"""`kubectl explain` on the sandbox shows the CRDs' field descriptions (served in /openapi/v3)."""

from __future__ import annotations

import pytest

from tests.fixtures.sandbox import Kubectl
from tests.fixtures.tools import REPO

pytestmark = pytest.mark.kubectl


@pytest.fixture(scope="module", autouse=True)
def crds(kubectl: Kubectl) -> None:
    kubectl.run("apply", "-f", str(REPO / "crds"))


def test_explain_canary_steps_describes_the_field_and_each_step_kind(kubectl: Kubectl) -> None:
    out = kubectl.run("explain", "rollout.spec.strategy.canary.steps").stdout
    assert "KIND:       Rollout" in out and "FIELD: steps <[]Object>" in out
    assert "The steps of an update, run in order" in out
    assert "setWeight\t<integer>" in out and "Share of traffic (or replicas) sent to the canary" in out
    assert "<no description>" not in out


@pytest.mark.parametrize(
    "field",
    [
        "rollout.spec.strategy.blueGreen.activeService",
        "rollout.status.canary.weights.canary.weight",
        "analysistemplate.spec.metrics.provider.prometheus.query",
        "clusteranalysistemplate.spec.args.valueFrom.secretKeyRef.key",
        "analysisrun.status.metricResults.measurements.value",
    ],
)
def test_explain_has_a_description_everywhere(kubectl: Kubectl, field: str) -> None:
    out = kubectl.run("explain", field, "--recursive=false").stdout
    description = out.split("DESCRIPTION:", 1)[1].split("FIELDS:", 1)[0].strip()
    assert description and description != "<no description>", out
