"""The plugin's API access: kubeconfig, context, namespace, and plain JSON requests.

The kubeconfig comes from the loader the controller uses too (rollouts.controller.kubeconfig, kubectl's
rules): `--kubeconfig`, else every file of `KUBECONFIG` merged, else `~/.kube/config`, else the in-cluster
service account. `--context` picks a context; the namespace is `-n`, else the context's namespace, else
"default". Requests go out through rollouts.cli.transport (http.client) and take and return plain dicts,
so that patches are exactly the JSON we build. Everything is synchronous: the plugin is a short-lived
command.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from rollouts.cli.transport import Transport
from rollouts.controller.kubeconfig import KubeconfigError
from rollouts.controller.kubeconfig import load as load_kubeconfig

if TYPE_CHECKING:
    from rollouts.cli.actions import Patch

T = TypeVar("T")

GROUP = "pyrollouts.io"
VERSION = "v1alpha1"
# A read answered 429 or 5xx is sent again this many times (after Retry-After, at most READ_RETRY_AFTER_MAX s,
# else a short jittered backoff); a write is not: the error says what was not done.
READ_RETRIES = 4
READ_RETRY_AFTER_MAX = 5.0
TRANSIENT = frozenset({429, 500, 502, 503, 504})


class CLIError(Exception):
    """An error the plugin reports as `Error: <message>` and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class APIError(CLIError):
    """A failed API request: `status` is the HTTP code, `body` the Status object when there is one."""

    def __init__(self, status: int, reason: str, body: Mapping[str, Any], message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body


@dataclass(frozen=True)
class Resource:
    """A resource type: `kind` for messages, `plural` for paths; cluster-scoped unless `namespaced`."""

    kind: str
    group_version: str
    plural: str
    namespaced: bool = True

    def collection(self, namespace: str | None) -> str:
        prefix = f"/api/{self.group_version}" if "/" not in self.group_version else f"/apis/{self.group_version}"
        if namespace is None or not self.namespaced:
            return f"{prefix}/{self.plural}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"

    def item(self, namespace: str, name: str, subresource: str = "") -> str:
        path = f"{self.collection(namespace)}/{name}"
        return f"{path}/{subresource}" if subresource else path


ROLLOUTS = Resource("rollout", f"{GROUP}/{VERSION}", "rollouts")
ANALYSISRUNS = Resource("analysisrun", f"{GROUP}/{VERSION}", "analysisruns")
EXPERIMENTS = Resource("experiment", f"{GROUP}/{VERSION}", "experiments")
ANALYSISTEMPLATES = Resource("analysistemplate", f"{GROUP}/{VERSION}", "analysistemplates")
CLUSTERANALYSISTEMPLATES = Resource(
    "clusteranalysistemplate", f"{GROUP}/{VERSION}", "clusteranalysistemplates", namespaced=False
)
REPLICASETS = Resource("replicaset", "apps/v1", "replicasets")
DEPLOYMENTS = Resource("deployment", "apps/v1", "deployments")
PODS = Resource("pod", "v1", "pods")
EVENTS = Resource("event", "v1", "events")
PODTEMPLATES = Resource("podtemplate", "v1", "podtemplates")
WORKLOAD_KINDS = {"Deployment": DEPLOYMENTS, "ReplicaSet": REPLICASETS, "PodTemplate": PODTEMPLATES}


def _status_message(body: Mapping[str, Any], fallback: str) -> str:
    message = body.get("message")
    return message if isinstance(message, str) and message else fallback


class Client:
    """API access for one plugin invocation, aimed at one namespace."""

    def __init__(self, transport: Transport, namespace: str, request_timeout: float | None = None) -> None:
        self.transport = transport
        self.namespace = namespace
        self.request_timeout = request_timeout

    @property
    def server(self) -> str:
        return self.transport.conn.server

    @classmethod
    def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        request_timeout: float | None = None,
    ) -> Client:
        """Load the kubeconfig (or in-cluster config) and settle the namespace; CLIError if impossible."""
        try:
            found = load_kubeconfig(kubeconfig, context)
        except KubeconfigError as exc:
            raise CLIError(str(exc)) from exc
        transport = Transport(found.connection())
        return cls(transport, namespace or found.namespace or "default", request_timeout)

    def close(self) -> None:
        self.transport.close()

    def all_at_once(self, *calls: Callable[[], T]) -> list[T]:
        """The results of `calls` (each making requests with this client), made at the same time on threads
        of their own (a connection each, closed after); the first call's error, in order, is raised."""
        results: list[T | None] = [None] * len(calls)
        errors: list[Exception | None] = [None] * len(calls)

        def run(index: int) -> None:
            try:
                results[index] = calls[index]()
            except Exception as exc:  # raised in the caller's thread below
                errors[index] = exc
            finally:
                self.transport.close()  # this thread's connection

        threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for error in errors:
            if error is not None:
                raise error
        return cast(list[T], results)

    # ------------------------------------------------------------------ raw requests

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> http.client.HTTPResponse:
        """The response of one request, not read yet; CLIError when the server is unreachable or untrusted."""
        try:
            return self.transport.send(method, path, query, body, content_type, timeout or self.request_timeout)
        except ssl.SSLError as exc:
            raise CLIError(_untrusted_server(self.server, exc)) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CLIError(_unreachable(self.server, exc)) from exc

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """One JSON request; APIError (with the server's Status) for any answer outside 2xx. A GET answered
        429 or 5xx is sent again (READ_RETRIES times)."""
        if method != "GET":
            return self._request_once(method, path, query, body, content_type)
        try:
            return self._request_once(method, path, query, body, content_type)
        except APIError as exc:
            if exc.status not in TRANSIENT:
                raise
            first = exc
        # tenacity is imported only once a read needs sending again (most invocations never do); the
        # attempt already made is replayed as its first, so its wait and count rules see it.
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        made = [first]

        def attempt() -> dict[str, Any]:
            if made:
                raise made.pop()
            return self._request_once(method, path, query, body, content_type)

        retrying = Retrying(
            stop=stop_after_attempt(READ_RETRIES + 1),
            wait=_read_wait,
            retry=retry_if_exception(lambda e: isinstance(e, APIError) and e.status in TRANSIENT),
            reraise=True,
        )
        return retrying(attempt)

    def _request_once(
        self, method: str, path: str, query: Mapping[str, str] | None, body: Any, content_type: str
    ) -> dict[str, Any]:
        response = self._send(method, path, query, body, content_type)
        data = _read(response, self.server)
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {}
        if not 200 <= response.status < 300:
            body_map = decoded if isinstance(decoded, dict) else {}
            text = data.decode("utf-8", "replace").strip() if isinstance(data, bytes) else str(data)
            raise APIError(
                response.status,
                str(body_map.get("reason") or response.reason),
                body_map,
                _status_message(body_map, f"{method} {path}: HTTP {response.status} {text}"),
            )
        if not isinstance(decoded, dict):
            raise CLIError(f"{method} {path}: the server answered with something other than a JSON object")
        return decoded

    def watch(
        self, path: str, query: Mapping[str, str], timeout_seconds: int = 60
    ) -> Iterator[dict[str, Any]]:
        """Watch events ({"type", "object"}) from a collection, until the server ends the stream."""
        params = {**query, "watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        response = self._send("GET", path, params, timeout=timeout_seconds + 10)
        try:
            if not 200 <= response.status < 300:
                data = _read(response, self.server)
                decoded = json.loads(data) if data else {}
                body_map = decoded if isinstance(decoded, dict) else {}
                raise APIError(response.status, str(body_map.get("reason", "")), body_map,
                               _status_message(body_map, f"watch {path}: HTTP {response.status}"))
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as exc:
                    raise CLIError(_unreachable(self.server, exc)) from exc
                if not line:
                    return
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event
        finally:
            response.close()

    # ------------------------------------------------------------------ objects

    def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        ns = namespace or self.namespace
        try:
            return self.request("GET", resource.item(ns, name))
        except APIError as exc:
            if exc.status == 404:
                raise not_found(resource, name, ns, exc) from exc
            raise

    def list(
        self, resource: Resource, namespace: str | None = None, all_namespaces: bool = False,
        label_selector: str = "", field_selector: str = "",
    ) -> dict[str, Any]:
        """The List object (items and metadata.resourceVersion)."""
        query = {}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        path = resource.collection(None if all_namespaces else (namespace or self.namespace))
        try:
            return self.request("GET", path, query)
        except APIError as exc:
            if exc.status == 404:
                raise missing_resource_type(resource, exc) from exc
            raise

    def create(self, resource: Resource, body: Mapping[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """POST a new object; the created object (with its generated name) comes back."""
        ns = namespace or self.namespace
        try:
            return self.request("POST", resource.collection(ns), body=body)
        except APIError as exc:
            if exc.status == 404:
                raise missing_resource_type(resource, exc) from exc
            name = str((body.get("metadata") or {}).get("name") or (body.get("metadata") or {}).get("generateName", ""))
            raise write_failed("create", resource, name, ns, exc) from exc

    def patch(
        self, resource: Resource, name: str, patch: Patch, namespace: str | None = None
    ) -> dict[str, Any]:
        ns = namespace or self.namespace
        try:
            return self.request(
                "PATCH", resource.item(ns, name, patch.subresource), body=patch.body, content_type=patch.content_type
            )
        except APIError as exc:
            if exc.status == 404:
                raise not_found(resource, name, ns, exc) from exc
            raise write_failed("patch", resource, name, ns, exc) from exc


def _read_wait(retry_state: Any) -> float:
    """The server's retryAfterSeconds (capped), else a jittered backoff from 0.2 s."""
    from tenacity import wait_random_exponential

    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    details = error.body.get("details") if isinstance(error, APIError) else None
    after = details.get("retryAfterSeconds") if isinstance(details, dict) else None
    if isinstance(after, int | float):
        return min(float(after), READ_RETRY_AFTER_MAX)
    return float(wait_random_exponential(multiplier=0.2, max=2.0)(retry_state))


def write_failed(verb: str, resource: Resource, name: str, namespace: str, exc: APIError) -> APIError:
    """A refused write, saying what was not done and what to do; other errors as they are."""
    if exc.status == 409:
        hint = "it changed meanwhile: run the command again"
    elif exc.status in TRANSIENT:
        hint = (
            "the change may not have been made: look with `kubectl rollouts get rollout` and run the command again"
        )
    else:
        return exc
    message = (
        f'could not {verb} {resource.kind} "{name}" in namespace "{namespace}": the API server answered '
        f"{exc.status} {exc.reason}: {exc.message}; {hint}"
    )
    return APIError(exc.status, exc.reason, exc.body, message)


def not_found(resource: Resource, name: str, namespace: str, exc: APIError) -> CLIError:
    """`rollout "x" not found in namespace "y"` with what to do next (or a missing CRD, when that is why)."""
    raw = exc.body.get("details")
    details: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    if details and details.get("name") not in (None, name):
        return exc
    if not details.get("name") and resource.group_version.startswith(GROUP):
        return missing_resource_type(resource, exc)
    if not resource.namespaced:
        return CLIError(
            f'{resource.kind} "{name}" not found; list them with: kubectl get {resource.plural}.{GROUP}'
        )
    hint = ""
    if resource is ROLLOUTS:
        hint = f"; list the rollouts there with: kubectl rollouts list rollouts -n {namespace}"
    elif resource.group_version.startswith(GROUP):
        hint = f"; list them with: kubectl get {resource.plural}.{GROUP} -n {namespace}"
    return CLIError(f'{resource.kind} "{name}" not found in namespace "{namespace}"{hint}')


def missing_resource_type(resource: Resource, exc: APIError) -> CLIError:
    if resource.group_version.startswith(GROUP):
        return CLIError(
            f'the server has no resource type "{resource.plural}.{GROUP}" ({exc.message}); '
            "install the pyrollouts CRDs first: kubectl apply -f crds/"
        )
    return exc


def _read(response: http.client.HTTPResponse, server: str) -> bytes:
    """The whole body; CLIError when the connection fails halfway."""
    try:
        return response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise CLIError(_unreachable(server, exc)) from exc


def _untrusted_server(server: str, exc: Exception) -> str:
    """kubectl's "certificate signed by unknown authority", with the verifier's own reason."""
    return (
        f"cannot verify the API server at {server}: {exc}; its TLS certificate is not signed by the "
        "kubeconfig's certificate authority (certificate-authority / certificate-authority-data)"
    )


def _unreachable(server: str, exc: BaseException) -> str:
    """One line naming the server and the socket's reason, without the exception chain."""
    return (
        f"cannot reach the API server at {server} ({_socket_reason(exc)}); is it running? "
        "check --kubeconfig and --context"
    )


def _socket_reason(exc: BaseException) -> str:
    """"connection refused", "timed out", "its host name does not resolve": the OS-level cause."""
    import socket

    if isinstance(exc, socket.gaierror):
        return "its host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return type(exc).__name__
