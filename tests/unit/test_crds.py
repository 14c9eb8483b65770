"""The CRDs in crds/ are structural, complete enough for Argo manifests, and accept every example."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rollouts.schema import CRDS_DIR, crd_schema, find_crd, load_crds, prune, validate_object

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GROUP = "pyrollouts.io"
VERSION = "v1alpha1"
CRDS = load_crds()
BY_KIND = {crd["spec"]["names"]["kind"]: crd for crd in CRDS}

EXPECTED = {
    # kind: (file, plural, short name, scope)
    "Rollout": ("rollouts.yaml", "rollouts", "ro", "Namespaced"),
    "AnalysisTemplate": ("analysistemplates.yaml", "analysistemplates", "at", "Namespaced"),
    "ClusterAnalysisTemplate": (
        "clusteranalysistemplates.yaml",
        "clusteranalysistemplates",
        "cat",
        "Cluster",
    ),
    "AnalysisRun": ("analysisruns.yaml", "analysisruns", "ar", "Namespaced"),
    "Experiment": ("experiments.yaml", "experiments", "exp", "Namespaced"),
}


def schema_of(kind: str) -> dict[str, Any]:
    return crd_schema(BY_KIND[kind], VERSION)


def node_at(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """Walk ``a.b[].c`` (``[]`` = array items, ``{}`` = map values) through a schema."""
    node = schema
    for part in path.split("."):
        name, suffix = part.rstrip("[]{}"), part[len(part.rstrip("[]{}")) :]
        node = node["properties"][name]
        for mark in suffix.replace("[]", "[").replace("{}", "{"):
            node = node["items"] if mark == "[" else node["additionalProperties"]
    return node


def words(text: str) -> list[str]:
    """Whitespace-separated items of a block of text (keeps long path lists readable)."""
    return text.split()


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema node with its path."""
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), Mapping):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


# --------------------------------------------------------------------------- the CRD objects


def test_every_crd_file_holds_one_crd() -> None:
    files = sorted(p.name for p in CRDS_DIR.glob("*.yaml"))
    assert files == sorted(f for f, *_ in EXPECTED.values())
    assert sorted(BY_KIND) == sorted(EXPECTED)
    for path in CRDS_DIR.glob("*.yaml"):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert len(docs) == 1, path


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_names_scope_and_version(kind: str) -> None:
    _, plural, short, scope = EXPECTED[kind]
    crd = BY_KIND[kind]
    spec = crd["spec"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    assert spec["group"] == GROUP
    assert spec["scope"] == scope
    assert spec["names"]["plural"] == plural
    assert spec["names"]["singular"] == kind.lower()
    assert spec["names"]["shortNames"] == [short]
    assert "pyrollouts" in spec["names"]["categories"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_schema_is_structural(kind: str) -> None:
    problems: list[str] = []
    for path, node in walk(schema_of(kind)):
        int_or_string = node.get("x-kubernetes-int-or-string") is True
        preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
        if "type" not in node and not (int_or_string or preserve):
            problems.append(f"{path or '<root>'}: no type")
        if int_or_string and "type" in node:
            problems.append(f"{path}: int-or-string must not set type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties together with additionalProperties")
        if node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties false is not structural")
        if node.get("type") == "array" and not isinstance(node.get("items"), Mapping):
            problems.append(f"{path}: array without items schema")
        for name in node.get("required", []):
            if name not in (node.get("properties") or {}):
                problems.append(f"{path}: required {name!r} is not a property")
        for keyword in ("anyOf", "oneOf", "allOf", "not", "$ref"):
            if keyword in node:
                problems.append(f"{path}: {keyword} is not used in our schemas")
    assert problems == []


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_root_has_metadata_and_enums_match_types(kind: str) -> None:
    schema = schema_of(kind)
    assert schema["type"] == "object"
    assert schema["properties"]["metadata"] == {"type": "object"}  # the apiserver owns ObjectMeta
    for path, node in walk(schema):
        if "enum" in node:
            assert node["type"] == "string", path
            assert all(isinstance(v, str) for v in node["enum"]), path


def test_rollout_subresources_and_columns() -> None:
    [version] = BY_KIND["Rollout"]["spec"]["versions"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.HPAReplicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = [(c["name"].upper(), c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("DESIRED", ".spec.replicas", "integer"),
        ("CURRENT", ".status.replicas", "integer"),
        ("UP-TO-DATE", ".status.updatedReplicas", "integer"),
        ("AVAILABLE", ".status.availableReplicas", "integer"),
        ("PHASE", ".status.phase", "string"),
        ("AGE", ".metadata.creationTimestamp", "date"),
    ]


def test_analysisrun_subresources_and_columns() -> None:
    [version] = BY_KIND["AnalysisRun"]["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"].upper(), c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"]]
    assert columns == [("STATUS", ".status.phase", "string"), ("AGE", ".metadata.creationTimestamp", "date")]


EXPERIMENT_FIELDS = words(
    """
spec.templates[].template.spec spec.templates[].selector.matchLabels{} spec.templates[].service.name
spec.analyses[].requiredForCompletion spec.analyses[].args[].valueFrom.secretKeyRef.key spec.duration
spec.progressDeadlineSeconds spec.scaleDownDelaySeconds spec.terminate spec.dryRun[].metricName
spec.measurementRetention[].limit status.availableAt status.templateStatuses[].podTemplateHash
status.analysisRuns[].phase
"""
)


def test_experiment_subresources_columns_and_phases() -> None:
    [version] = BY_KIND["Experiment"]["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"].upper(), c["jsonPath"], c["type"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("STATUS", ".status.phase", "string"),
        ("MESSAGE", ".status.message", "string"),
        ("AGE", ".metadata.creationTimestamp", "date"),
    ]
    schema = schema_of("Experiment")
    assert node_at(schema, "status.phase")["enum"] == [
        "Pending",
        "Running",
        "Successful",
        "Failed",
        "Error",
        "Inconclusive",
    ]
    for path in EXPERIMENT_FIELDS:
        assert node_at(schema, path), path


@pytest.mark.parametrize("kind", ["AnalysisTemplate", "ClusterAnalysisTemplate"])
def test_template_status_subresource(kind: str) -> None:
    # The controller writes condition Invalid (issue 4) through /status; spec edits bump the generation.
    [version] = BY_KIND[kind]["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    schema = schema_of(kind)
    assert node_at(schema, "status.observedGeneration")["type"] == "integer"
    assert node_at(schema, "status.conditions[]")["required"] == ["type", "status"]


@pytest.mark.parametrize("kind", EXPECTED)
def test_every_property_has_a_description(kind: str) -> None:
    """`kubectl explain` shows each field's description: none may be missing or empty."""
    schema = schema_of(kind)
    undescribed = [
        f"{path}.{name}"
        for path, node in walk(schema)
        for name, child in (node.get("properties") or {}).items()
        if not str(child.get("description") or "").strip() and f"{path}.{name}" != ".metadata"
    ]  # the root metadata is ObjectMeta, which the API server describes (and must stay {type: object})
    assert undescribed == []


def test_cluster_and_namespaced_templates_share_one_schema() -> None:
    assert schema_of("AnalysisTemplate") == schema_of("ClusterAnalysisTemplate")


# --------------------------------------------------------------------------- field coverage

ROLLOUT_FIELDS = words(
    """
spec.replicas spec.selector.matchLabels{} spec.selector.matchExpressions[].operator
spec.template.metadata.labels{} spec.template.metadata.annotations{} spec.template.spec
spec.workloadRef.apiVersion spec.workloadRef.kind spec.workloadRef.name spec.workloadRef.scaleDown
spec.minReadySeconds spec.revisionHistoryLimit spec.paused spec.progressDeadlineSeconds
spec.progressDeadlineAbort spec.restartAt spec.rollbackWindow.revisions
spec.analysis.successfulRunHistoryLimit spec.analysis.unsuccessfulRunHistoryLimit
spec.strategy.canary.canaryService spec.strategy.canary.stableService
spec.strategy.canary.pingPong.pingService spec.strategy.canary.pingPong.pongService
spec.strategy.canary.steps[].setWeight spec.strategy.canary.steps[].pause.duration
spec.strategy.canary.steps[].setCanaryScale.replicas spec.strategy.canary.steps[].setCanaryScale.weight
spec.strategy.canary.steps[].setCanaryScale.matchTrafficWeight
spec.strategy.canary.steps[].analysis.templates[].templateName
spec.strategy.canary.steps[].analysis.templates[].clusterScope
spec.strategy.canary.steps[].analysis.args[].valueFrom.podTemplateHashValue
spec.strategy.canary.steps[].analysis.args[].valueFrom.fieldRef.fieldPath
spec.strategy.canary.steps[].analysis.dryRun[].metricName
spec.strategy.canary.steps[].analysis.measurementRetention[].limit
spec.strategy.canary.steps[].analysis.analysisRunMetadata.labels{}
spec.strategy.canary.steps[].experiment.templates[].specRef
spec.strategy.canary.steps[].experiment.analyses[].templateName
spec.strategy.canary.steps[].setHeaderRoute.match[].headerValue.regex
spec.strategy.canary.steps[].setMirrorRoute.match[].path.prefix
spec.strategy.canary.steps[].setMirrorRoute.percentage spec.strategy.canary.steps[].plugin.config
spec.strategy.canary.maxSurge spec.strategy.canary.maxUnavailable
spec.strategy.canary.analysis.startingStep spec.strategy.canary.analysis.templates[].templateName
spec.strategy.canary.trafficRouting.nginx.stableIngresses[]
spec.strategy.canary.trafficRouting.nginx.annotationPrefix
spec.strategy.canary.trafficRouting.nginx.additionalIngressAnnotations{}
spec.strategy.canary.trafficRouting.nginx.canaryIngressAnnotations{}
spec.strategy.canary.trafficRouting.istio.virtualService.tlsRoutes[].sniHosts[]
spec.strategy.canary.trafficRouting.istio.virtualService.tcpRoutes[].port
spec.strategy.canary.trafficRouting.istio.virtualServices[].routes[]
spec.strategy.canary.trafficRouting.istio.destinationRule.canarySubsetName
spec.strategy.canary.trafficRouting.smi.rootService
spec.strategy.canary.trafficRouting.smi.trafficSplitName
spec.strategy.canary.trafficRouting.gatewayAPI.httpRoute
spec.strategy.canary.trafficRouting.gatewayAPI.httpRoutes[].useHeaderRoutes
spec.strategy.canary.trafficRouting.gatewayAPI.grpcRoute
spec.strategy.canary.trafficRouting.gatewayAPI.namespace
spec.strategy.canary.trafficRouting.alb.servicePort
spec.strategy.canary.trafficRouting.ambassador.mappings[]
spec.strategy.canary.trafficRouting.appMesh.virtualService.name
spec.strategy.canary.trafficRouting.traefik.weightedTraefikServiceName
spec.strategy.canary.trafficRouting.apisix.route.name
spec.strategy.canary.trafficRouting.managedRoutes[].name
spec.strategy.canary.trafficRouting.maxTrafficWeight spec.strategy.canary.trafficRouting.plugins
spec.strategy.canary.antiAffinity.requiredDuringSchedulingIgnoredDuringExecution
spec.strategy.canary.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight
spec.strategy.canary.canaryMetadata.labels{} spec.strategy.canary.stableMetadata.annotations{}
spec.strategy.canary.scaleDownDelaySeconds spec.strategy.canary.scaleDownDelayRevisionLimit
spec.strategy.canary.abortScaleDownDelaySeconds spec.strategy.canary.dynamicStableScale
spec.strategy.canary.minPodsPerReplicaSet spec.strategy.canary.replicaProgressThreshold.type
spec.strategy.blueGreen.activeService spec.strategy.blueGreen.previewService
spec.strategy.blueGreen.previewReplicaCount spec.strategy.blueGreen.autoPromotionEnabled
spec.strategy.blueGreen.autoPromotionSeconds spec.strategy.blueGreen.maxUnavailable
spec.strategy.blueGreen.scaleDownDelaySeconds spec.strategy.blueGreen.scaleDownDelayRevisionLimit
spec.strategy.blueGreen.abortScaleDownDelaySeconds
spec.strategy.blueGreen.prePromotionAnalysis.templates[].templateName
spec.strategy.blueGreen.postPromotionAnalysis.args[].name
spec.strategy.blueGreen.antiAffinity.preferredDuringSchedulingIgnoredDuringExecution.weight
spec.strategy.blueGreen.previewMetadata.labels{} spec.strategy.blueGreen.activeMetadata.annotations{}
status.phase status.message status.currentPodHash status.stableRS status.currentStepIndex
status.currentStepHash status.pauseConditions[].reason status.pauseConditions[].startTime
status.controllerPause status.abort status.abortedAt status.promoteFull
status.canary.weights.canary.weight status.canary.weights.stable.podTemplateHash
status.canary.weights.additional[].serviceName status.canary.weights.verified
status.canary.currentStepAnalysisRunStatus.status status.canary.currentBackgroundAnalysisRunStatus.name
status.canary.currentExperiment status.canary.stablePingPong status.blueGreen.activeSelector
status.blueGreen.previewSelector status.blueGreen.prePromotionAnalysisRunStatus.message
status.blueGreen.postPromotionAnalysisRunStatus.name status.blueGreen.scaleUpPreviewCheckPoint
status.replicas status.updatedReplicas status.readyReplicas status.availableReplicas status.HPAReplicas
status.selector status.collisionCount status.observedGeneration status.restartedAt
status.workloadObservedGeneration status.conditions[].type status.conditions[].status
status.conditions[].reason status.conditions[].message status.conditions[].lastUpdateTime
status.conditions[].lastTransitionTime status.controller
"""
)

TEMPLATE_FIELDS = words(
    """
spec.metrics[].name spec.metrics[].interval spec.metrics[].initialDelay spec.metrics[].count
spec.metrics[].successCondition spec.metrics[].failureCondition spec.metrics[].failureLimit
spec.metrics[].inconclusiveLimit spec.metrics[].consecutiveErrorLimit
spec.metrics[].consecutiveSuccessLimit spec.metrics[].provider.prometheus.address
spec.metrics[].provider.prometheus.query spec.metrics[].provider.prometheus.rangeQuery.step
spec.metrics[].provider.prometheus.timeout spec.metrics[].provider.prometheus.insecure
spec.metrics[].provider.prometheus.headers[].key
spec.metrics[].provider.prometheus.authentication.sigv4.region
spec.metrics[].provider.prometheus.authentication.oauth2.tokenUrl
spec.metrics[].provider.prometheus.authentication.bearerToken.secretKeyRef.key
spec.metrics[].provider.prometheus.authentication.basicAuth.username
spec.metrics[].provider.prometheus.authentication.basicAuth.passwordSecretRef.name
spec.metrics[].provider.web.method spec.metrics[].provider.web.url
spec.metrics[].provider.web.urlFrom.secretKeyRef.name spec.metrics[].provider.web.headers[].value
spec.metrics[].provider.web.body spec.metrics[].provider.web.jsonBody
spec.metrics[].provider.web.timeoutSeconds spec.metrics[].provider.web.jsonPath
spec.metrics[].provider.web.insecure spec.metrics[].provider.web.authentication.oauth2.clientId
spec.metrics[].provider.job.metadata.labels{} spec.metrics[].provider.job.spec
spec.metrics[].provider.judge spec.metrics[].provider.kayenta spec.metrics[].provider.datadog
spec.metrics[].provider.newRelic spec.metrics[].provider.wavefront spec.metrics[].provider.cloudWatch
spec.metrics[].provider.graphite spec.metrics[].provider.influxdb spec.metrics[].provider.skywalking
spec.metrics[].provider.plugin spec.args[].name spec.args[].value spec.args[].valueFrom.secretKeyRef.key
spec.args[].valueFrom.fieldRef.fieldPath spec.dryRun[].metricName spec.measurementRetention[].metricName
spec.measurementRetention[].limit spec.templates[].templateName spec.templates[].clusterScope
status.observedGeneration status.conditions[].type status.conditions[].status
status.conditions[].reason status.conditions[].message status.conditions[].lastTransitionTime
"""
)

RUN_FIELDS = words(
    """
spec.metrics[].provider.prometheus.query spec.args[].valueFrom.secretKeyRef.name spec.terminate
spec.ttlStrategy.secondsAfterCompletion spec.ttlStrategy.secondsAfterFailure
spec.ttlStrategy.secondsAfterSuccess status.phase status.message status.startedAt status.completedAt
status.runSummary.count status.runSummary.error status.dryRunSummary.failed status.metricResults[].name
status.metricResults[].phase status.metricResults[].message status.metricResults[].measurements[].phase
status.metricResults[].measurements[].value status.metricResults[].measurements[].metadata{}
status.metricResults[].measurements[].resumeAt status.metricResults[].measurements[].startedAt
status.metricResults[].measurements[].finishedAt status.metricResults[].consecutiveError
status.metricResults[].consecutiveSuccess status.metricResults[].dryRun
status.metricResults[].metadata{}
"""
)


@pytest.mark.parametrize(
    ("kind", "path"),
    [("Rollout", p) for p in ROLLOUT_FIELDS]
    + [(k, p) for k in ("AnalysisTemplate", "ClusterAnalysisTemplate") for p in TEMPLATE_FIELDS]
    + [("AnalysisRun", p) for p in RUN_FIELDS],
)
def test_field_is_declared(kind: str, path: str) -> None:
    node_at(schema_of(kind), path)


INT_OR_STRING = [
    ("Rollout", "spec.strategy.canary.maxSurge"),
    ("Rollout", "spec.strategy.canary.maxUnavailable"),
    ("Rollout", "spec.strategy.blueGreen.maxUnavailable"),
    ("Rollout", "spec.strategy.canary.steps[].pause.duration"),
    ("Rollout", "status.observedGeneration"),
    ("AnalysisTemplate", "spec.metrics[].count"),
    ("AnalysisTemplate", "spec.metrics[].failureLimit"),
    ("AnalysisTemplate", "spec.metrics[].inconclusiveLimit"),
    ("AnalysisTemplate", "spec.metrics[].consecutiveErrorLimit"),
]


@pytest.mark.parametrize(("kind", "path"), INT_OR_STRING)
def test_int_or_string_fields(kind: str, path: str) -> None:
    assert node_at(schema_of(kind), path).get("x-kubernetes-int-or-string") is True


PRESERVED = [
    ("Rollout", "spec.template.spec"),
    ("Rollout", "spec.template.metadata"),
    ("Rollout", "status.controller"),
    ("AnalysisTemplate", "spec.metrics[].provider.job.spec"),
    ("AnalysisTemplate", "spec.metrics[].provider.judge"),
    ("AnalysisTemplate", "spec.metrics[].provider.web.jsonBody"),
]


@pytest.mark.parametrize(("kind", "path"), PRESERVED)
def test_preserved_subtrees(kind: str, path: str) -> None:
    assert node_at(schema_of(kind), path).get("x-kubernetes-preserve-unknown-fields") is True


ENUMS = [
    ("Rollout", "status.phase", ["Healthy", "Progressing", "Paused", "Degraded"]),
    ("Rollout", "spec.workloadRef.scaleDown", ["never", "onsuccess", "progressively"]),
    ("Rollout", "spec.strategy.canary.analysis.args[].valueFrom.podTemplateHashValue", ["Stable", "Latest"]),
    ("Rollout", "status.conditions[].status", ["True", "False", "Unknown"]),
    ("AnalysisTemplate", "spec.metrics[].provider.web.method", ["GET", "POST", "PUT"]),
    ("AnalysisTemplate", "status.conditions[].status", ["True", "False", "Unknown"]),
    ("ClusterAnalysisTemplate", "status.conditions[].status", ["True", "False", "Unknown"]),
    (
        "AnalysisRun",
        "status.phase",
        ["Pending", "Running", "Successful", "Failed", "Error", "Inconclusive"],
    ),
]


@pytest.mark.parametrize(("kind", "path", "values"), ENUMS)
def test_enums(kind: str, path: str, values: list[str]) -> None:
    assert node_at(schema_of(kind), path)["enum"] == values


def test_required_fields() -> None:
    rollout = schema_of("Rollout")
    # A Rollout with workloadRef may leave the selector to the referenced workload.
    assert "selector" not in rollout["properties"]["spec"].get("required", [])
    set_weight = node_at(rollout, "spec.strategy.canary.steps[].setWeight")
    # no maximum: with trafficRouting.maxTrafficWeight a step may ask for more than 100 (checked by the controller)
    assert (set_weight["type"], set_weight["minimum"], set_weight.get("maximum")) == ("integer", 0, None)
    metric = node_at(schema_of("AnalysisTemplate"), "spec.metrics[]")
    assert "name" in metric["required"]
    assert node_at(schema_of("AnalysisRun"), "spec")["required"] == ["metrics"]


def without_description(node: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if key != "description"}


def test_date_time_fields() -> None:
    rollout = schema_of("Rollout")
    for path in ("spec.restartAt", "status.abortedAt", "status.pauseConditions[].startTime"):
        assert without_description(node_at(rollout, path)) == {"type": "string", "format": "date-time"}, path
    for kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
        node = node_at(schema_of(kind), "status.conditions[].lastTransitionTime")
        assert without_description(node) == {"type": "string", "format": "date-time"}, kind


# --------------------------------------------------------------------------- examples

REQUIRED_EXAMPLES = words(
    """
canary-basic.yaml canary-with-analysis.yaml blue-green.yaml nginx.yaml istio.yaml smi.yaml
gateway-api.yaml workload-ref.yaml analysis-template-web.yaml analysis-template-job.yaml
cluster-analysis-template.yaml
"""
)


def example_docs() -> list[tuple[str, int, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc:
                docs.append((path.name, index, doc))
    return docs


DOCS = example_docs()
OURS = [d for d in DOCS if d[2].get("apiVersion") == f"{GROUP}/{VERSION}"]


def test_examples_exist() -> None:
    assert set(REQUIRED_EXAMPLES) - {p.name for p in EXAMPLES.glob("*.yaml")} == set()
    kinds = {d[2]["kind"] for d in OURS}
    assert kinds >= {"Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate"}


@pytest.mark.parametrize(("name", "index", "doc"), DOCS, ids=[f"{n}#{i}" for n, i, _ in DOCS])
def test_example_documents_are_objects(name: str, index: int, doc: dict[str, Any]) -> None:
    assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name")


@pytest.mark.parametrize(("name", "index", "doc"), OURS, ids=[f"{n}#{i}" for n, i, _ in OURS])
def test_example_validates_and_survives_pruning(name: str, index: int, doc: dict[str, Any]) -> None:
    assert validate_object(CRDS, doc) == []
    crd = find_crd(CRDS, GROUP, doc["kind"])
    assert crd is not None
    assert prune(crd_schema(crd, VERSION), doc) == doc


def test_error_rate_template_queries_the_canary_hash() -> None:
    [template] = [d for n, _, d in OURS if n == "canary-with-analysis.yaml" and d["kind"] == "AnalysisTemplate"]
    query = template["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    assert "http_requests_total{" in query
    assert 'rollouts_pod_template_hash="{{args.canary-hash}}",code=~"5.."' in query


def test_example_rollouts_reference_existing_services() -> None:
    services = {(n, d["metadata"]["name"]) for n, _, d in DOCS if d["kind"] == "Service"}
    for name, _, doc in OURS:
        if doc["kind"] != "Rollout":
            continue
        strategy = doc["spec"]["strategy"]
        wanted = [strategy.get("canary", {}).get(k) for k in ("canaryService", "stableService")]
        wanted += [strategy.get("blueGreen", {}).get(k) for k in ("activeService", "previewService")]
        for service in filter(None, wanted):
            assert (name, service) in services, f"{name}: Service {service} missing"
