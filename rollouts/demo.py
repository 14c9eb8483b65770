"""`pyrollouts demo`: start a sandbox cluster, install the CRDs, run a small workload and show it
with kubectl. (The canary walkthrough joins once the controller lands.)"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from rollouts import schema
from rollouts.sandbox.cluster import ThreadedSandbox

DEMO_DIR = Path(".demo")

DEMO_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "hello"},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "hello"}},
        "template": {
            "metadata": {"labels": {"app": "hello"}, "annotations": {"sandbox.pyrollouts.io/ready-after": "1s"}},
            "spec": {"containers": [{"name": "hello", "image": "nginx:1.25"}]},
        },
    },
}


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    if response.status_code not in (201, 409):
        raise RuntimeError(f"creating {body['kind']} {body['metadata']['name']} failed: {response.text}")


def _kubectl(kubeconfig: Path, *args: str) -> None:
    binary = shutil.which("kubectl")
    if binary is None:
        return
    print(f"\n$ kubectl {' '.join(args)}", flush=True)
    env = {"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(DEMO_DIR / "kube-cache"),
           "PATH": str(Path(binary).parent)}
    subprocess.run([binary, *args], env=env, check=False, timeout=60)


def run_demo(keep_running: bool = False) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    kubeconfig = (DEMO_DIR / "kubeconfig").resolve()
    with ThreadedSandbox(kubeconfig_path=kubeconfig) as sandbox:
        print(f"sandbox cluster at {sandbox.url}; kubeconfig: {kubeconfig}", flush=True)
        with httpx.Client(base_url=sandbox.url, timeout=10) as client:
            for crd in schema.load_crds():
                _post(client, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
            _post(client, "/apis/apps/v1/namespaces/default/deployments", DEMO_DEPLOYMENT)
            example = Path(__file__).resolve().parent.parent / "examples" / "canary-basic.yaml"
            if example.exists():
                for doc in yaml.safe_load_all(example.read_text()):
                    if doc and doc.get("kind") in ("Service", "Rollout"):
                        group = doc["apiVersion"].rpartition("/")[0]
                        plural = {"Service": "services", "Rollout": "rollouts"}[doc["kind"]]
                        prefix = f"/apis/{doc['apiVersion']}" if group else f"/api/{doc['apiVersion']}"
                        _post(client, f"{prefix}/namespaces/default/{plural}", doc)
            print("installed the pyrollouts CRDs, a Deployment 'hello' (3 pods, ready after 1s) and "
                  "examples/canary-basic.yaml", flush=True)
            _kubectl(kubeconfig, "get", "pods")
            time.sleep(1.5)
            _kubectl(kubeconfig, "get", "deployments,replicasets,pods")
            _kubectl(kubeconfig, "get", "rollouts")
        if shutil.which("kubectl") is None:
            print("kubectl is not on PATH: install it to talk to the sandbox", flush=True)
        print("\nTry it yourself: `pyrollouts sandbox --kubeconfig .demo/kubeconfig` keeps a sandbox running; "
              "then `export KUBECONFIG=$PWD/.demo/kubeconfig` and use kubectl.", flush=True)
        if keep_running:
            print("sandbox running until Ctrl-C", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    print("demo finished; sandbox stopped", flush=True)
    return 0
