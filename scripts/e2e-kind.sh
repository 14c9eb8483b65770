#!/usr/bin/env bash
# `make e2e-kind`: the scenario tests against a real cluster. Needs docker, kind and kubectl on PATH.
# Creates a kind cluster, builds the controller's image with `docker build` and loads it into the cluster,
# installs deploy/base and a minimal Prometheus (tests/e2e/prometheus.yaml), waits for the controller's
# Deployment, runs tests/scenarios with PYROLLOUTS_E2E=1, and deletes the cluster on the way out.
#   CLUSTER_NAME   kind cluster to create (default: pyrollouts-e2e)
#   PYTHON         the interpreter with pyrollouts[test] installed (default: .venv/bin/python)
#   KEEP_CLUSTER=1 leave the cluster running afterwards (to look around)
#   NGINX          the real image tagged as the scenarios' nginx:1, nginx:2 and nginx:3 (default: nginx:1.27-alpine)
# Extra arguments go to pytest (e.g. tests/scenarios/test_bluegreen.py -x).
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_NAME=${CLUSTER_NAME:-pyrollouts-e2e}
PYTHON=${PYTHON:-.venv/bin/python}
IMAGE=pyrollouts:0.1.0 # deploy/base's kustomization.yaml pins this tag
NGINX=${NGINX:-nginx:1.27-alpine}
WORKDIR=$(mktemp -d)
export KUBECONFIG="$WORKDIR/kubeconfig"

for tool in docker kind kubectl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "e2e-kind: $tool is not on PATH" >&2; exit 2; }
done

cleanup() {
    local status=$?
    if [[ ${KEEP_CLUSTER:-0} == 1 ]]; then
        echo "e2e-kind: keeping cluster $CLUSTER_NAME (KUBECONFIG=$KUBECONFIG)" >&2
    else
        kind delete cluster --name "$CLUSTER_NAME" >/dev/null 2>&1 || true
        rm -rf "$WORKDIR"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kind create cluster --name "$CLUSTER_NAME" --kubeconfig "$KUBECONFIG" --wait 120s

docker build -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

# The scenarios roll between the versions "nginx:1", "nginx:2" and "nginx:3", which exist only in the
# sandbox: give the kind nodes a real nginx under those tags (pulled never again: IfNotPresent).
docker pull "$NGINX"
for version in 1 2 3; do
    docker tag "$NGINX" "nginx:$version"
done
kind load docker-image nginx:1 nginx:2 nginx:3 --name "$CLUSTER_NAME"

kubectl apply -k deploy/base
kubectl apply -f tests/e2e/prometheus.yaml

kubectl -n pyrollouts rollout status deployment/pyrollouts --timeout=180s
kubectl -n monitoring rollout status deployment/prometheus --timeout=180s

# The in-cluster controller serves the scenarios; the tests start none of their own (tests/scenarios/conftest.py).
PYROLLOUTS_E2E=1 "$PYTHON" -m pytest -q -p no:cacheprovider "${@:-tests/scenarios}"
