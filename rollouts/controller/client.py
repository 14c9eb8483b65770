"""The only module that talks to the Kubernetes API: an async HTTP client with retries, and the in-memory
caches that the watch streams keep fresh. Where the API server is comes from the kubeconfig loader.

Reads during a reconcile come from :class:`Cache` (filled by the operator's watches and by the
answers to our own writes); only writes, and a GET after a conflict, go to the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from rollouts import __version__
from rollouts.controller.freshness import file_stamp, refresh_due
from rollouts.controller.kubeconfig import Connection, tls_context
from rollouts.controller.ratelimit import TokenBucket
from rollouts.controller.retry import retrying
from rollouts.model.reporting import CONTROLLER_VERSION_ANNOTATION

log = logging.getLogger("pyrollouts.kube")


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The kind's name across API groups (caches, watches and indexes key by it)."""
        return resource_key(self.group, self.plural)

    def path(self, namespace: str | None, name: str = "", subresource: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
        return base


ROLLOUTS = Kind("pyrollouts.io", "v1alpha1", "rollouts", "Rollout")
REPLICASETS = Kind("apps", "v1", "replicasets", "ReplicaSet")
DEPLOYMENTS = Kind("apps", "v1", "deployments", "Deployment")
SERVICES = Kind("", "v1", "services", "Service")
PODS = Kind("", "v1", "pods", "Pod")
EVENTS = Kind("", "v1", "events", "Event")
ANALYSISRUNS = Kind("pyrollouts.io", "v1alpha1", "analysisruns", "AnalysisRun")
EXPERIMENTS = Kind("pyrollouts.io", "v1alpha1", "experiments", "Experiment")
ANALYSISTEMPLATES = Kind("pyrollouts.io", "v1alpha1", "analysistemplates", "AnalysisTemplate")
CLUSTERANALYSISTEMPLATES = Kind(
    "pyrollouts.io", "v1alpha1", "clusteranalysistemplates", "ClusterAnalysisTemplate", namespaced=False
)
JOBS = Kind("batch", "v1", "jobs", "Job")
SECRETS = Kind("", "v1", "secrets", "Secret")
CONFIGMAPS = Kind("", "v1", "configmaps", "ConfigMap")
INGRESSES = Kind("networking.k8s.io", "v1", "ingresses", "Ingress")
LEASES = Kind("coordination.k8s.io", "v1", "leases", "Lease")


def resource_key(group: str, plural: str) -> str:
    """A resource as kubectl spells it, `virtualservices.networking.istio.io` (a core kind: its plural
    alone). The plural alone is ambiguous: Istio and App Mesh both serve `virtualservices`."""
    return f"{plural}.{group}" if group else plural


def kind_of(api_version: str, plural: str, kind: str) -> Kind:
    """The Kind of a routing object a traffic router names (any group, e.g. split.smi-spec.io/v1alpha2)."""
    group, _, version = api_version.rpartition("/")
    return Kind(group, version, plural, kind)



# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """A non-2xx answer from the API server (its ``Status`` message when it sent one)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        body: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body or {}
        self.retry_after = retry_after  # seconds, from the Retry-After header or details.retryAfterSeconds

    @property
    def conflict(self) -> bool:
        return self.status == 409 and self.reason != "AlreadyExists"

    @property
    def already_exists(self) -> bool:
        return self.status == 409 and self.reason == "AlreadyExists"

    @property
    def not_found(self) -> bool:
        return self.status == 404


class NotLeading(ApiError):
    """A write refused before it was sent: this controller does not hold the leader Lease (any more)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(0, "NotLeading", f"{method} {path}: not the leader, not written")


class WritesHeld(ApiError):
    """A write refused before it was sent: the connection to the API server was lost, and the caches
    may describe a server that is no more until they are listed again."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(0, "WritesHeld", f"{method} {path}: held until the caches are listed again, not written")


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The client-side request limit (--qps, --burst): Argo Rollouts' defaults.
DEFAULT_QPS = 40.0
DEFAULT_BURST = 80


def transient(error: BaseException) -> bool:
    """Worth sending again: the server was busy, failed or unreachable."""
    return isinstance(error, ApiError) and not isinstance(error, NotLeading | WritesHeld) and (
        error.status in RETRY_STATUSES
    )


def retry_after(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, ApiError) else None
# After a refresh that failed, the still-valid credentials are used this long before the next try.
REFRESH_RETRY_AFTER = 5.0


class Client:
    """A small async client for the verbs the controller uses, with retries on transient errors.

    With `login` (the kubeconfig loader), a request the server rejects as Unauthorized loads the
    credentials again and is sent once more: an exec plugin's token expires, a service account's rotates.
    Before that, a request loads them again when they are due (rollouts.controller.freshness): shortly
    before an exec plugin's credential expires, and when a token file changes or a minute has passed.

    With `may_write` (leader election), every request but a GET is refused with :class:`NotLeading`
    unless it answers True at the moment the request is sent (each retry asks again). With `writes_held`,
    it is refused with :class:`WritesHeld` while that answers True; `on_connection_lost` hears of every
    request that could not reach the server (the server found again may be another one).

    A request answered 429 or 5xx, or that cannot connect, is sent again up to `retries` times after the
    server's Retry-After or a jittered exponential backoff (rollouts.controller.retry); every attempt first
    takes a token of `limit` (--qps / --burst)."""

    def __init__(
        self,
        conn: Connection,
        retries: int = 5,
        backoff: float = 0.1,
        login: Callable[[], Connection] | None = None,
        may_write: Callable[[], bool] | None = None,
        limit: TokenBucket | None = None,
        writes_held: Callable[[], bool] | None = None,
        on_connection_lost: Callable[[], None] | None = None,
    ) -> None:
        self.conn = conn
        self.may_write = may_write
        self.writes_held = writes_held
        self.on_connection_lost = on_connection_lost
        self.retries = retries
        self.backoff = backoff
        self.login = login
        # Told (method, path, status) of every response, retries included: the controller's request metrics.
        self.on_response: Callable[[str, str, int], None] = lambda *_: None
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._login_lock = asyncio.Lock()
        self._refresh_failed_at = -REFRESH_RETRY_AFTER

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is not None:
            return
        ssl_ctx: ssl.SSLContext | bool = tls_context(self.conn) if self.conn.server.startswith("https") else False
        self._session = aiohttp.ClientSession(
            base_url=self.conn.server,
            headers={"Accept": "application/json", "User-Agent": "pyrollouts-controller"},
            connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=64),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _login_again(self, rejected: Connection) -> None:
        """Load the credentials again, once for all the requests that `rejected` failed."""
        assert self.login is not None
        async with self._login_lock:
            if self.conn is not rejected:
                return  # another request already did
            conn = await asyncio.to_thread(self.login)
            same_tls = (conn.server, conn.ca_path, conn.cert_path, conn.key_path, conn.verify) == (
                rejected.server,
                rejected.ca_path,
                rejected.cert_path,
                rejected.key_path,
                rejected.verify,
            )
            self.conn = conn
            if not same_tls:  # new client certificates (from an exec plugin): a new session
                stale, self._session = self._session, None
                await self.open()
                if stale is not None:
                    await stale.close()

    async def _refresh_if_due(self) -> None:
        """Load the credentials again if they are due, before the server rejects them; on failure keep
        the ones we have (a 401 would still load them again) and try again a little later."""
        conn, now = self.conn, time.time()
        if self.login is None or now - self._refresh_failed_at < REFRESH_RETRY_AFTER:
            return
        if not refresh_due(now, conn.refresh_at, conn.token_file_stamp, file_stamp(conn.token_file)):
            return
        try:
            await self._login_again(conn)
        except Exception as exc:  # the plugin or file may fail for any reason; the old token may still do
            self._refresh_failed_at = now
            log.warning("could not refresh the credentials (keeping the current ones): %s", exc)

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        await self.open()
        # The first try goes without tenacity: setting up its retry loop for every request was a twentieth
        # of the controller's CPU at scale, and almost every request succeeds at once.
        try:
            return await self._attempt(method, path, body, content_type, params)
        except Exception as error:
            if self.retries == 0 or not transient(error):
                raise
            first_error = error
        first = True
        async for attempt in retrying(self.retries + 1, self.backoff, transient, retry_after):
            with attempt:
                if first:  # the try above, as tenacity's first attempt: its wait and log follow as ever
                    first = False
                    raise first_error
                return await self._attempt(method, path, body, content_type, params)
        raise AssertionError("unreachable: the last error is raised")

    async def _attempt(
        self, method: str, path: str, body: Any, content_type: str, params: Mapping[str, str] | None
    ) -> dict[str, Any]:
        """One try (two when the server rejects our credentials and loading them again helps)."""
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise NotLeading(method, path)
        if method != "GET" and self.writes_held is not None and self.writes_held():
            raise WritesHeld(method, path)
        if self.limit is not None:
            await self.limit.acquire()
        await self._refresh_if_due()
        conn = self.conn
        try:
            return await self._send(conn, method, path, body, content_type, params)
        except ApiError as error:
            if error.status != 401 or self.login is None:
                raise
            log.info("%s %s: %s; loading the credentials again", method, path, error)
        await self._login_again(conn)
        return await self._send(self.conn, method, path, body, content_type, params)

    async def _send(
        self,
        conn: Connection,
        method: str,
        path: str,
        body: Any,
        content_type: str,
        params: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        session = self._session
        assert session is not None
        headers = {"Content-Type": content_type}
        if conn.token:
            headers["Authorization"] = f"Bearer {conn.token}"
        try:
            async with session.request(method, path, json=body, params=params, headers=headers) as resp:
                self.on_response(method, path, resp.status)
                text = await resp.text()
                if resp.status < 300:
                    data: dict[str, Any] = json.loads(text) if text else {}  # decoded once, not twice
                    return data
                raise _api_error(resp.status, text, resp.headers.get("Retry-After"))
        except aiohttp.ClientConnectionError as exc:
            if self.on_connection_lost is not None:
                self.on_connection_lost()
            raise ApiError(503, "ConnectionError", f"{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise ApiError(503, "ConnectionError", f"{type(exc).__name__}: {exc}") from exc

    async def watch(
        self, kind: Kind, namespace: str | None, params: Mapping[str, str]
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch of `kind` (in `namespace`, or all) until the server ends or cuts it; not
        retried and not limited (a watch is one long request). ApiError when it is refused or the server
        cannot be reached."""
        import json

        await self.open()
        session, conn = self._session, self.conn
        assert session is not None
        headers = {"Authorization": f"Bearer {conn.token}"} if conn.token else {}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            async with session.get(
                kind.path(namespace), params={**params, "watch": "true"}, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 300:
                    raise _api_error(resp.status, await resp.text(), resp.headers.get("Retry-After"))
                async for line in resp.content:
                    if line.strip():
                        yield json.loads(line)
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            return  # the stream was cut: the caller watches again from where it was
        except aiohttp.ClientConnectionError as exc:
            raise ApiError(503, "ConnectionError", f"{type(exc).__name__}: {exc}") from exc

    async def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any]:
        return await self.request("GET", kind.path(namespace, name))

    async def list(self, kind: Kind, namespace: str | None = None, label_selector: str | None = None) -> dict[str, Any]:
        params = {"labelSelector": label_selector} if label_selector else None
        return await self.request("GET", kind.path(namespace), params=params)

    async def create(self, kind: Kind, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", kind.path(namespace), body=dict(body))

    async def patch(
        self, kind: Kind, namespace: str, name: str, patch: Mapping[str, Any], subresource: str = ""
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            kind.path(namespace, name, subresource),
            body=dict(patch),
            content_type="application/merge-patch+json",
        )

    async def replace(self, kind: Kind, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: the whole object, guarded by the resourceVersion it carries."""
        return await self.request("PUT", kind.path(namespace, name), body=dict(body))

    async def json_patch(self, kind: Kind, namespace: str, name: str, operations: Any) -> dict[str, Any]:
        """An RFC 6902 JSON patch (a list of operations; a ``test`` op makes it conditional)."""
        return await self.request(
            "PATCH", kind.path(namespace, name), body=operations, content_type="application/json-patch+json"
        )

    async def delete(self, kind: Kind, namespace: str, name: str, uid: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        return await self.request("DELETE", kind.path(namespace, name), body=body)


def _seconds(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date, or nonsense: back off as usual


def _api_error(status: int, text: str, retry_after_header: str | None = None) -> ApiError:
    import json

    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {}
    after = _seconds(retry_after_header)
    if isinstance(body, dict) and body.get("kind") == "Status":
        raw = body.get("details")
        details: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        if after is None:
            after = _seconds(details.get("retryAfterSeconds"))
        return ApiError(status, str(body.get("reason", "")), str(body.get("message", "")), body, after)
    return ApiError(status, "Unknown", text[:500], retry_after=after)


# --------------------------------------------------------------------------- events


_HOST = socket.gethostname()


def event_body(obj: Mapping[str, Any], etype: str, reason: str, message: str, component: str) -> dict[str, Any]:
    """A core/v1 Event about ``obj`` (as ``kubectl describe`` shows it)."""
    meta = obj.get("metadata") or {}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "generateName": f"{meta.get('name', '')}.",
            "namespace": meta.get("namespace", ""),
            "annotations": {CONTROLLER_VERSION_ANNOTATION: __version__},
        },
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", ""),
            "kind": obj.get("kind", ""),
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "uid": meta.get("uid", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        },
        "reason": reason,
        "message": message,
        "type": etype,
        "source": {"component": component},
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": f"{component}-{_HOST}",
        "action": reason,
    }


# --------------------------------------------------------------------------- caches


#: What an object refers to by name in its own namespace: (resource, name) pairs (`Kind.resource`).
References = Callable[[Mapping[str, Any]], Iterable[tuple[str, str]]]


def _discard(index: dict[Any, set[tuple[str, str]]], at: Any, key: tuple[str, str]) -> None:
    keys = index.get(at)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[at]


#: What the controller reads of a pod (restarts, blue/green pod metadata): the rest is not cached.
POD_METADATA_FIELDS = frozenset(
    {"name", "namespace", "uid", "resourceVersion", "ownerReferences", "creationTimestamp", "deletionTimestamp",
     "labels", "annotations"}
)  # fmt: skip
POD_STATUS_FIELDS = frozenset({"phase", "conditions"})
#: What the controller reads of a ReplicaSet (strategy.replicasets.ReplicaSetView): of its pod template only
#: the metadata (ephemeral labels); the pod spec, which is most of a ReplicaSet, is not cached.
REPLICASET_SPEC_FIELDS = frozenset({"replicas", "minReadySeconds"})
REPLICASET_STATUS_FIELDS = frozenset({"replicas", "readyReplicas", "availableReplicas", "observedGeneration"})


def cached_fields(kind: Kind, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `obj` the cache keeps: never `managedFields` (the controller writes by merge patch and
    reads no field ownership), and of a pod or ReplicaSet only what the controller reads. The controller
    never writes back a whole cached object (no PUT), so nothing it drops is ever lost on the server."""
    out = dict(obj)
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        if kind.resource == PODS.resource:
            out["metadata"] = {k: v for k, v in meta.items() if k in POD_METADATA_FIELDS}
        elif "managedFields" in meta:
            out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    if kind.resource == PODS.resource:
        out.pop("spec", None)
        out["status"] = _only(obj.get("status"), POD_STATUS_FIELDS)
    elif kind.resource == REPLICASETS.resource:
        spec = obj.get("spec")
        if isinstance(spec, Mapping):
            out["spec"] = _only(spec, REPLICASET_SPEC_FIELDS)
            template = spec.get("template")
            if isinstance(template, Mapping) and "metadata" in template:
                out["spec"]["template"] = {"metadata": template["metadata"]}
        out["status"] = _only(obj.get("status"), REPLICASET_STATUS_FIELDS)
    return out


def _only(value: Any, fields: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in value.items() if k in fields} if isinstance(value, Mapping) else {}


#: How long a deleted object's resourceVersion is kept to refuse late answers about it.
TOMBSTONE_SECONDS = 300.0


def _rv(obj: Mapping[str, Any]) -> int | None:
    text = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def _same(uid: str, other: str) -> bool:
    """Could these be the same object? (An object without a uid is compared by name alone.)"""
    return not uid or not other or uid == other


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


class Cache:
    """The latest known version of each watched object, by kind, namespace and name.

    Fed by watch events and by the answers to our own writes; an older resourceVersion of the same object
    (same uid) never replaces a newer one, so a write's answer and a late watch event can arrive in any
    order. resourceVersions are compared only within one object: a server that started again empty
    counts from 1 again. Objects are indexed by their uid, by their controller owner's uid, and by what
    `references` says they refer to (a Rollout: its Services, Deployment, routing objects), so an event
    finds the objects it concerns without a scan: its cost does not grow with the cache. A deleted object
    leaves a tombstone (its uid and last resourceVersion) so a late answer cannot bring it back;
    tombstones are dropped after `tombstone_seconds`, long past any answer in flight, so deletions do not
    grow the cache."""

    def __init__(
        self,
        tombstone_seconds: float = TOMBSTONE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        references: Mapping[str, References] | None = None,
    ) -> None:
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._owned: dict[str, dict[str, set[tuple[str, str]]]] = {}
        self._by_uid: dict[str, dict[str, tuple[str, str]]] = {}
        self._references = dict(references or {})
        # resource -> (namespace, referenced resource, referenced name) -> keys of the objects referring to it
        self._referrers: dict[str, dict[tuple[str, str, str], set[tuple[str, str]]]] = {}
        # (resource, namespace, name) -> (uid, resourceVersion, when deleted), oldest first
        self._gone: dict[tuple[str, str, str], tuple[str, int, float]] = {}
        self._tombstone_seconds = tombstone_seconds
        self._clock = clock
        self._stored_at: dict[tuple[str, str, str], int] = {}  # when each entry was last stored (see mark)
        self._writes = 0

    @property
    def tombstones(self) -> int:
        return len(self._gone)

    def put(self, kind: Kind, obj: Mapping[str, Any]) -> bool:
        """Store ``obj`` unless we know a newer version of it, or know it was deleted; True when stored."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        store = self._objects.setdefault(kind.resource, {})
        new_rv, uid = _rv(obj), str(meta.get("uid") or "")
        gone = self._gone.get((kind.resource, *key))
        if gone is not None and _same(gone[0], uid) and new_rv is not None and new_rv <= gone[1]:
            return False
        current = store.get(key)
        if current is not None:
            old_rv, old_uid = _rv(current), str((current.get("metadata") or {}).get("uid") or "")
            if _same(old_uid, uid) and old_rv is not None and new_rv is not None and new_rv < old_rv:
                return False
            self._unindex(kind, key, current)
        stored = cached_fields(kind, obj)
        store[key] = stored
        self._writes += 1
        self._stored_at[(kind.resource, *key)] = self._writes
        self._index(kind, key, stored)
        return True

    def remove(self, kind: Kind, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        store = self._objects.setdefault(kind.resource, {})
        current = store.get(key)
        if current is not None:
            cur_uid = (current.get("metadata") or {}).get("uid")
            if meta.get("uid") and cur_uid and cur_uid != meta.get("uid"):
                return  # an older incarnation went away; a newer one with the same name is here
            self._unindex(kind, key, current)
            del store[key]
            self._stored_at.pop((kind.resource, *key), None)
        rv = _rv(obj)
        if rv is not None:
            now = self._clock()
            self._gone.pop((kind.resource, *key), None)  # re-inserted last: the dict stays oldest first
            self._gone[(kind.resource, *key)] = (str(meta.get("uid") or ""), rv, now)
            self._prune_tombstones(now)

    def _prune_tombstones(self, now: float) -> None:
        while self._gone:
            oldest = next(iter(self._gone))
            if now - self._gone[oldest][2] <= self._tombstone_seconds:
                return
            del self._gone[oldest]

    def _index(self, kind: Kind, key: tuple[str, str], obj: Mapping[str, Any]) -> None:
        owner = controller_uid(obj)
        if owner:
            self._owned.setdefault(kind.resource, {}).setdefault(owner, set()).add(key)
        uid = (obj.get("metadata") or {}).get("uid")
        if uid:
            self._by_uid.setdefault(kind.resource, {})[str(uid)] = key
        references = self._references.get(kind.resource)
        if references is not None:
            referrers = self._referrers.setdefault(kind.resource, {})
            for resource, name in references(obj):
                referrers.setdefault((key[0], resource, name), set()).add(key)

    def mark(self) -> int:
        """A point in the cache's history: `forget_unlisted` keeps what was stored after it."""
        return self._writes

    def forget_unlisted(
        self, kind: Kind, listed: Iterable[Mapping[str, Any]], mark: int, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """After a fresh listing of `kind` (requested after `mark`; of one namespace, or all with None): drop
        the objects it lacks that nothing stored since `mark` (they were deleted while no watch saw it, or
        the server is a new one). The dropped objects are returned."""
        seen = {str((o.get("metadata") or {}).get("uid") or "") for o in listed}
        dropped = []
        for key, obj in list(self._objects.get(kind.resource, {}).items()):
            if namespace is not None and key[0] != namespace:
                continue
            uid = str((obj.get("metadata") or {}).get("uid") or "")
            if uid not in seen and self._stored_at.get((kind.resource, *key), 0) <= mark:
                self._unindex(kind, key, obj)
                del self._objects[kind.resource][key]
                self._stored_at.pop((kind.resource, *key), None)
                dropped.append(obj)
        return dropped

    def _unindex(self, kind: Kind, key: tuple[str, str], obj: Mapping[str, Any]) -> None:
        owner = controller_uid(obj)
        if owner:
            _discard(self._owned.get(kind.resource, {}), owner, key)
        uid = (obj.get("metadata") or {}).get("uid")
        if uid and self._by_uid.get(kind.resource, {}).get(str(uid)) == key:
            del self._by_uid[kind.resource][str(uid)]
        references = self._references.get(kind.resource)
        if references is not None:
            referrers = self._referrers.get(kind.resource, {})
            for resource, name in references(obj):
                _discard(referrers, (key[0], resource, name), key)

    def by_uid(self, kind: Kind, uid: str) -> dict[str, Any] | None:
        key = self._by_uid.get(kind.resource, {}).get(uid)
        return None if key is None else self._objects.get(kind.resource, {}).get(key)

    def referring_to(self, kind: Kind, namespace: str, resource: str, name: str) -> list[dict[str, Any]]:
        """The objects of `kind` in `namespace` whose `references` name the object `resource`/`name`."""
        keys = self._referrers.get(kind.resource, {}).get((namespace, resource, name), set())
        store = self._objects.get(kind.resource, {})
        return [store[k] for k in sorted(keys) if k in store]

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(kind.resource, {}).get((namespace, name))

    def owned_by(self, kind: Kind, uid: str) -> list[dict[str, Any]]:
        keys = self._owned.get(kind.resource, {}).get(uid, set())
        store = self._objects.get(kind.resource, {})
        return [store[k] for k in sorted(keys) if k in store]

    def all(self, kind: Kind, namespace: str | None = None) -> Iterable[dict[str, Any]]:
        for (ns, _), obj in self._objects.get(kind.resource, {}).items():
            if namespace is None or ns == namespace:
                yield obj
