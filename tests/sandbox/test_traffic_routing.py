"""The sandbox's simulated traffic follows routing objects: at a 20% canary weight, about 20% of the
requests reach the canary pods, whatever the router (with as many canary pods as stable ones, so a
split by pods would give 50%); requests carrying the configured header follow header routes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import kubernetes
import pytest
import yaml

from rollouts.sandbox.cluster import ThreadedSandbox
from rollouts.sandbox.traffic import parse_text_metrics, series_value
from tests.fixtures.kube import api_client, request_body
from tests.fixtures.manifests import sandbox_replicaset
from tests.fixtures.tools import REPO, deadline_after

NS = "default"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def routed_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedSandbox]:
    workdir = tmp_path_factory.mktemp("routing")
    with ThreadedSandbox(workdir / "kubeconfig", default_ready_after=0.1, traffic_rps=1000, metrics_port=0) as sb:
        yield sb


@pytest.fixture(scope="module")
def k8s(routed_sandbox: ThreadedSandbox) -> Iterator[kubernetes.client.ApiClient]:
    assert routed_sandbox.kubeconfig_path is not None
    with api_client(routed_sandbox.kubeconfig_path) as client:
        extensions = kubernetes.client.ApiextensionsV1Api(client)
        for path in sorted((REPO / "examples" / "crds").glob("*.yaml")):
            for crd in yaml.safe_load_all(path.read_text()):
                extensions.create_custom_resource_definition(crd)
        yield client


def scrape(sb: ThreadedSandbox) -> Samples:
    assert sb.metrics_url is not None
    return parse_text_metrics(httpx.get(sb.metrics_url, timeout=5).text)


def count(samples: Samples, **labels: str) -> float:
    return series_value(samples, "http_requests_total", **labels)


def share_of_canary(sb: ThreadedSandbox, app: str, service: str, seconds: float = 1.5) -> float:
    """Once all four pods answer requests, the canary's share of `service`'s requests over `seconds`."""
    deadline = deadline_after(60)
    while True:
        first = scrape(sb)
        pods = {dict(k[1])["pod"] for k in first if dict(k[1]).get("service") == service}
        if len(pods) == 4 and count(first, service=service, rollouts_pod_template_hash=f"{app}-c") > 0:
            break
        assert time.monotonic() < deadline, f"the traffic of {service} never reached all pods: {pods}"
        time.sleep(0.1)
    time.sleep(seconds)
    last = scrape(sb)
    total = count(last, service=service) - count(first, service=service)
    canary = count(last, service=service, rollouts_pod_template_hash=f"{app}-c") - count(
        first, service=service, rollouts_pod_template_hash=f"{app}-c"
    )
    assert total > 1000
    return canary / total


def versions(k8s: kubernetes.client.ApiClient, app: str) -> None:
    """Two stable pods, two canary pods; Services `<app>` (all), `<app>-stable`, `<app>-canary`."""
    core, apps = kubernetes.client.CoreV1Api(k8s), kubernetes.client.AppsV1Api(k8s)
    for name, extra in ((app, {}), (f"{app}-stable", {"rollouts-pod-template-hash": f"{app}-s"})):
        selector = {"app": app, **extra}
        core.create_namespaced_service(
            NS, request_body({"metadata": {"name": name}, "spec": {"selector": selector, "ports": [{"port": 80}]}})
        )
    core.create_namespaced_service(
        NS,
        request_body(
            {
                "metadata": {"name": f"{app}-canary"},
                "spec": {"selector": {"app": app, "rollouts-pod-template-hash": f"{app}-c"}, "ports": [{"port": 80}]},
            }
        ),
    )
    apps.create_namespaced_replica_set(NS, request_body(sandbox_replicaset(f"{app}-s", app, f"{app}-s", 2)))
    apps.create_namespaced_replica_set(NS, request_body(sandbox_replicaset(f"{app}-c", app, f"{app}-c", 2)))


def custom(k8s: kubernetes.client.ApiClient, group: str, version: str, plural: str, body: dict[str, Any]) -> None:
    kubernetes.client.CustomObjectsApi(k8s).create_namespaced_custom_object(group, version, NS, plural, body)


def istio_host(k8s: kubernetes.client.ApiClient, app: str) -> str:
    custom(
        k8s,
        "networking.istio.io",
        "v1beta1",
        "virtualservices",
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "VirtualService",
            "metadata": {"name": app},
            "spec": {
                "hosts": [app],
                "http": [
                    {
                        "name": "primary",
                        "route": [
                            {"destination": {"host": f"{app}-stable"}, "weight": 80},
                            {"destination": {"host": f"{app}-canary.default.svc.cluster.local"}, "weight": 20},
                        ],
                    }
                ],
            },
        },
    )
    return app  # the VirtualService's host is a Service: the label


def istio_subset(k8s: kubernetes.client.ApiClient, app: str) -> str:
    custom(
        k8s,
        "networking.istio.io",
        "v1beta1",
        "destinationrules",
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "DestinationRule",
            "metadata": {"name": app},
            "spec": {
                "host": app,
                "subsets": [
                    {"name": "stable", "labels": {"rollouts-pod-template-hash": f"{app}-s"}},
                    {"name": "canary", "labels": {"rollouts-pod-template-hash": f"{app}-c"}},
                ],
            },
        },
    )
    custom(
        k8s,
        "networking.istio.io",
        "v1alpha3",
        "virtualservices",
        {
            "apiVersion": "networking.istio.io/v1alpha3",
            "kind": "VirtualService",
            "metadata": {"name": app},
            "spec": {
                "hosts": [app],
                "http": [
                    {
                        "route": [
                            {"destination": {"host": app, "subset": "stable"}, "weight": 80},
                            {"destination": {"host": app, "subset": "canary"}, "weight": 20},
                        ]
                    }
                ],
            },
        },
    )
    return app


def smi(k8s: kubernetes.client.ApiClient, app: str) -> str:
    custom(
        k8s,
        "split.smi-spec.io",
        "v1alpha2",
        "trafficsplits",
        {
            "apiVersion": "split.smi-spec.io/v1alpha2",
            "kind": "TrafficSplit",
            "metadata": {"name": app},
            "spec": {
                "service": app,
                "backends": [{"service": f"{app}-canary", "weight": 20}, {"service": f"{app}-stable", "weight": 80}],
            },
        },
    )
    return app


def http_route(k8s: kubernetes.client.ApiClient, app: str) -> str:
    custom(
        k8s,
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": app},
            "spec": {
                "rules": [
                    {
                        "backendRefs": [
                            {"name": f"{app}-stable", "port": 80, "weight": 80},
                            {"name": f"{app}-canary", "port": 80, "weight": 20},
                        ]
                    }
                ]
            },
        },
    )
    return f"{app}-stable"


def nginx(k8s: kubernetes.client.ApiClient, app: str) -> str:
    networking = kubernetes.client.NetworkingV1Api(k8s)

    def ingress(name: str, service: str, annotations: dict[str, str]) -> dict[str, Any]:
        backend = {"service": {"name": service, "port": {"number": 80}}}
        rule = {
            "host": f"{app}.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
        }
        return {"metadata": {"name": name, "annotations": annotations}, "spec": {"rules": [rule]}}

    networking.create_namespaced_ingress(NS, request_body(ingress(app, f"{app}-stable", {})))
    prefix = "nginx.ingress.kubernetes.io"
    networking.create_namespaced_ingress(
        NS,
        request_body(
            ingress(f"{app}-canary", f"{app}-canary", {f"{prefix}/canary": "true", f"{prefix}/canary-weight": "20"})
        ),
    )
    return f"{app}-stable"


@pytest.mark.slow
@pytest.mark.parametrize(
    "route",
    [istio_host, istio_subset, smi, http_route, nginx],
    ids=["istio-host", "istio-subset", "smi", "httproute", "nginx"],
)
def test_canary_at_20_percent_gets_20_percent(
    routed_sandbox: ThreadedSandbox,
    k8s: kubernetes.client.ApiClient,
    route: Callable[[kubernetes.client.ApiClient, str], str],
) -> None:
    app = route.__name__.replace("_", "-")
    service = route(k8s, app)  # first, so that the Services behind it never get direct traffic
    versions(k8s, app)
    assert share_of_canary(routed_sandbox, app, service) == pytest.approx(0.2, abs=0.04)
    # the Services behind the router get no direct traffic of their own (subset routing uses neither)
    labels = {dict(k[1]).get("service") for k in scrape(routed_sandbox)}
    assert service in labels and (f"{app}-canary" not in labels or route is istio_subset)


@pytest.mark.slow
def test_requests_with_the_header_follow_the_header_route(
    routed_sandbox: ThreadedSandbox, k8s: kubernetes.client.ApiClient
) -> None:
    app = "headers"
    versions(k8s, app)
    stable = {"name": f"{app}-stable", "port": 80, "weight": 100}
    canary = {"name": f"{app}-canary", "port": 80, "weight": 0}
    header = {"type": "Exact", "name": "X-Canary", "value": "yes"}
    custom(
        k8s,
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": app,
                "annotations": {
                    "sandbox.pyrollouts.io/request-header": "X-Canary: yes",
                    "sandbox.pyrollouts.io/request-header-fraction": "0.3",
                },
            },
            "spec": {
                "rules": [
                    {
                        "name": "by-header",
                        "matches": [{"headers": [header]}],
                        "backendRefs": [{"name": f"{app}-canary", "port": 80}],
                    },
                    {"backendRefs": [stable, canary]},
                ]
            },
        },
    )
    assert share_of_canary(routed_sandbox, app, f"{app}-stable") == pytest.approx(0.3, abs=0.04)


def apisix_route(app: str, name: str, rule: dict[str, Any]) -> dict[str, Any]:
    """An ApisixRoute with one rule for `<app>.example.com/*` (plus the rule's own match fields)."""
    match = {"hosts": [f"{app}.example.com"], "paths": ["/*"], **rule.get("match", {})}
    return {
        "apiVersion": "apisix.apache.org/v2",
        "kind": "ApisixRoute",
        "metadata": {"name": name},
        "spec": {"http": [{**rule, "match": match}]},
    }


@pytest.mark.slow
def test_apisix_weights_and_header_route(routed_sandbox: ThreadedSandbox, k8s: kubernetes.client.ApiClient) -> None:
    app = "apisix"
    stable = {"serviceName": f"{app}-stable", "servicePort": 80, "weight": 80}
    canary = {"serviceName": f"{app}-canary", "servicePort": 80, "weight": 20}
    main = apisix_route(app, app, {"name": "web", "backends": [stable, canary]})
    custom(k8s, "apisix.apache.org", "v2", "apisixroutes", main)
    versions(k8s, app)
    assert share_of_canary(routed_sandbox, app, f"{app}-stable") == pytest.approx(0.2, abs=0.04)

    # the header route the router writes: 30% of requests carry the header, all of them reach the canary
    header = [{"subject": {"scope": "Header", "name": "X-Canary"}, "op": "Equal", "value": "yes"}]
    by_header = {"name": "web", "priority": 1, "match": {"exprs": header}, "backends": [{**canary, "weight": 100}]}
    custom(k8s, "apisix.apache.org", "v2", "apisixroutes", apisix_route(app, f"{app}-header", by_header))
    patch = {
        "metadata": {
            "annotations": {
                "sandbox.pyrollouts.io/request-header": "X-Canary: yes",
                "sandbox.pyrollouts.io/request-header-fraction": "0.3",
            }
        }
    }
    kubernetes.client.CustomObjectsApi(k8s).patch_namespaced_custom_object(
        "apisix.apache.org", "v2", NS, "apisixroutes", app, patch
    )
    # 0.3 by the header, plus 20% of the other 0.7
    assert share_of_canary(routed_sandbox, app, f"{app}-stable") == pytest.approx(0.3 + 0.7 * 0.2, abs=0.04)


def ambassador(k8s: kubernetes.client.ApiClient, app: str) -> str:
    for name, service, weight in ((app, f"{app}-stable:80", None), (f"{app}-canary", f"{app}-canary:80", 20)):
        spec: dict[str, Any] = {"prefix": f"/{app}/", "service": service}
        if weight is not None:
            spec["weight"] = weight
        body = {"apiVersion": "getambassador.io/v2", "kind": "Mapping", "metadata": {"name": name}, "spec": spec}
        custom(k8s, "getambassador.io", "v2", "mappings", body)
    return f"{app}-stable"


def appmesh(k8s: kubernetes.client.ApiClient, app: str) -> str:
    def mesh(kind: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": "appmesh.k8s.aws/v1beta2", "kind": kind, "metadata": {"name": name}, "spec": spec}
        custom(k8s, "appmesh.k8s.aws", "v1beta2", kind.lower() + "s", body)

    for version, hash_ in (("canary", "c"), ("stable", "s")):
        selector = {"matchLabels": {"app": app, "rollouts-pod-template-hash": f"{app}-{hash_}"}}
        dns = {"dns": {"hostname": f"{app}-{version}.{NS}.svc.cluster.local"}}
        mesh("VirtualNode", f"{app}-{version}", {"podSelector": selector, "serviceDiscovery": dns})
    targets = [{"virtualNodeRef": {"name": f"{app}-canary"}, "weight": 20}]
    targets.append({"virtualNodeRef": {"name": f"{app}-stable"}, "weight": 80})
    route = {"name": "primary", "httpRoute": {"match": {"prefix": "/"}, "action": {"weightedTargets": targets}}}
    mesh("VirtualRouter", f"{app}-router", {"routes": [route]})
    mesh("VirtualService", app, {"provider": {"virtualRouter": {"virtualRouterRef": {"name": f"{app}-router"}}}})
    return app


@pytest.mark.slow
@pytest.mark.parametrize("route", [ambassador, appmesh], ids=["ambassador", "appmesh"])
def test_gateway_kinds_at_20_percent_get_20_percent(
    routed_sandbox: ThreadedSandbox,
    k8s: kubernetes.client.ApiClient,
    route: Callable[[kubernetes.client.ApiClient, str], str],
) -> None:
    app = route.__name__
    service = route(k8s, app)
    versions(k8s, app)
    assert share_of_canary(routed_sandbox, app, service) == pytest.approx(0.2, abs=0.04)
    labels = {dict(k[1]).get("service") for k in scrape(routed_sandbox)}
    assert service in labels and f"{app}-canary" not in labels
