"""The HTTP face of the sandbox: Kubernetes REST paths, content negotiation, watch streams."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from rollouts.sandbox import admission, discovery, limits, openapi, openapi_v2, protobuf, rbac, tables
from rollouts.sandbox.access import ANONYMOUS, Access
from rollouts.sandbox.errors import ApiError, bad_request, method_not_allowed, unknown_resource
from rollouts.sandbox.faults import Faults, request_verb
from rollouts.sandbox.holds import Holds
from rollouts.sandbox.patches import APPLY_PATCH, APPLY_PATCH_CBOR
from rollouts.sandbox.resources import ResourceType
from rollouts.sandbox.store import Store
from rollouts.sandbox.watch_encoding import SharedEncodings
from rollouts.sandbox.watch_pacing import WriteTurns

log = logging.getLogger("pyrollouts.sandbox")
USER = web.RequestKey("user", rbac.UserInfo)

NAMESPACE_SUBRESOURCES = ("status", "finalize")
DEFAULT_WATCH_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 10.0
DENIALS_KEPT = 100


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    rtype: ResourceType
    namespace: str | None  # None: across all namespaces (or a cluster-scoped kind)
    name: str = ""
    subresource: str = ""


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept.split(",")[0] if accept else False


def _decode_protobuf(raw: bytes) -> dict[str, Any]:
    """A protobuf body (kubectl's typed `create` commands) as JSON; 415 for kinds the decoder does not know."""
    try:
        return protobuf.decode(raw)
    except protobuf.UnsupportedKind as exc:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"{exc}; send JSON or YAML instead: `kubectl create -f FILE` or `kubectl apply -f FILE` "
            "(`kubectl create ... --dry-run=client -o yaml` writes the manifest)",
            {"kind": exc.kind} if exc.kind else {},
        ) from exc
    except protobuf.ProtobufError as exc:
        raise bad_request(f"the protobuf request body could not be decoded: {exc}") from exc


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


class ApiServer:
    def __init__(self, store: Store, access: Access | None = None, faults: Faults | None = None) -> None:
        self.store = store
        self.faults = faults
        self.holds = Holds()  # writes a test holds to kill their client before they land (/sandbox/holds)
        self.access = access or Access(store)
        self.requests: Counter[tuple[str, str]] = Counter()
        # (client, Kubernetes verb, resource[/subresource]): what the scale benchmark reads per client.
        self.request_counts: Counter[tuple[str, str, str]] = Counter()
        # How many 401 and 403 answers were given, and the latest messages (the RBAC tests read them).
        self.denial_count = 0
        self.denials: deque[str] = deque(maxlen=DENIALS_KEPT)
        self.app = web.Application(
            client_max_size=limits.MAX_REQUEST_BODY, middlewares=[self._errors, self._authenticate_and_authorize]
        )
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._streams: set[web.StreamResponse] = set()
        self.encodings = SharedEncodings()
        self.write_turns = WriteTurns()
        self.server_address = "127.0.0.1:0"

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            if exc.code in (401, 403):
                self.denial_count += 1
                self.denials.append(exc.message)
                log.info("%s %s: %d %s", request.method, request.path_qs, exc.code, exc.message)
            retry_after = exc.details.get("retryAfterSeconds")
            return _json(exc.status(), exc.code, {"Retry-After": str(retry_after)} if retry_after else None)
        except web.HTTPRequestEntityTooLarge:
            return _json(limits.body_too_large().status(), 413)
        except web.HTTPException:
            raise
        except RecursionError:
            # A value nested below MAX_NESTING can still exhaust the stack in a recursive step.
            return _json(limits.too_deep().status(), 400)
        except Exception as exc:
            log.exception("internal error serving %s %s", request.method, request.path)
            return _json(
                ApiError(500, "InternalError", f"Internal error occurred: {type(exc).__name__}: {exc}").status(), 500
            )

    @web.middleware
    async def _authenticate_and_authorize(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """401 for a token nobody issued; the impersonated user if asked (and allowed); 403 unless RBAC
        allows the request. Handlers find the acting user in `request[USER]`."""
        user = self.access.authenticate(request.headers.get("Authorization", ""))
        user = self.access.impersonate(
            user, request.headers.get("Impersonate-User", ""), request.headers.getall("Impersonate-Group", [])
        )
        if self.access.enforcing:
            self.access.require(rbac.request_attributes(user, request.method, request.path, request.query))
        request[USER] = user
        return await handler(request)

    def _count_request(self, request: web.Request) -> None:
        attributes = rbac.request_attributes(ANONYMOUS, request.method, request.path, request.query)
        resource = attributes.resource or attributes.path
        if attributes.subresource:
            resource = f"{resource}/{attributes.subresource}"
        client = request.headers.get("User-Agent", "").split("/", 1)[0].split(" ", 1)[0]
        self.request_counts[(client, attributes.verb, resource)] += 1

    # ------------------------------------------------------------------ routing

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        registry = self.store.registry
        self.requests[(request.method, "/".join(parts[:3]))] += 1
        self._count_request(request)
        if parts == ["sandbox", "holds"]:
            return await self.holds.serve(request)
        if request.method == "GET":
            if parts == ["openapi", "v2"]:
                body, content_type = openapi_v2.render(registry, request.headers.get("Accept", ""))
                return web.Response(body=body, headers={"Content-Type": content_type})
            fixed = self._fixed_document(parts)
            if fixed is not None:
                return fixed
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise unknown_resource()
        if not rest:
            doc = discovery.api_resource_list(registry, group, version)
            if doc is None:
                raise unknown_resource()
            return _json(doc)
        target = self._resolve(group, version, rest)
        return await self._serve(request, target)

    def _fixed_document(self, parts: list[str]) -> web.Response | None:
        registry = self.store.registry
        if parts == ["version"]:
            return _json(discovery.version_info())
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if parts == ["api"]:
            return _json(discovery.api_versions(self.server_address))
        if parts == ["apis"]:
            return _json(discovery.api_group_list(registry))
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(registry, parts[1])
            if doc is None:
                raise unknown_resource()
            return _json(doc)
        if parts == ["openapi", "v3"]:
            return _json(openapi.root_document(registry))
        if parts[:2] == ["openapi", "v3"]:
            rest = parts[2:]
            group, version = (
                ("", rest[1])
                if rest[:1] == ["api"] and len(rest) == 2
                else ((rest[1], rest[2]) if rest[:1] == ["apis"] and len(rest) == 3 else ("", ""))
            )
            doc = openapi.group_version_document(registry, group, version) if version else None
            if doc is None:
                raise unknown_resource()
            return _json(doc)
        if parts == ["sandbox", "requests"]:
            return _json({f"{m} /{p}": n for (m, p), n in sorted(self.requests.items())})
        if parts == ["sandbox", "request-counts"]:
            counts = sorted(self.request_counts.items())
            return _json([{"client": c, "verb": v, "resource": r, "count": n} for (c, v, r), n in counts])
        if parts == ["sandbox", "denials"]:
            return _json({"count": self.denial_count, "messages": list(self.denials)})
        return None

    def _resolve(self, group: str, version: str, rest: list[str]) -> Target:
        registry = self.store.registry

        def rtype_of(plural: str) -> ResourceType:
            rtype = registry.get(group, version, plural)
            if rtype is None:
                raise unknown_resource()
            return rtype

        if rest[0] == "namespaces" and len(rest) >= 3 and not group and rest[2] in NAMESPACE_SUBRESOURCES:
            if len(rest) > 3:
                raise unknown_resource()
            return Target(rtype_of("namespaces"), None, rest[1], rest[2])
        if rest[0] == "namespaces" and len(rest) >= 3:
            rtype = rtype_of(rest[2])
            if not rtype.namespaced or len(rest) > 5:
                raise unknown_resource()
            return Target(rtype, rest[1], rest[3] if len(rest) > 3 else "", rest[4] if len(rest) > 4 else "")
        rtype = rtype_of(rest[0])
        if len(rest) > 3 or (rtype.namespaced and len(rest) > 1):
            raise unknown_resource()
        return Target(rtype, None, rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else "")

    # ------------------------------------------------------------------ verbs

    def _injected_fault(self, request: web.Request, target: Target) -> ApiError | None:
        """The fault `--faults` draws for this request (None: serve it)."""
        faults = self.faults
        if faults is None or not faults.applies_to(request.headers.get("User-Agent", "")):
            return None
        verb = request_verb(request.method, bool(target.name), _flag(request, "watch"))
        return faults.draw(verb, target.rtype.plural, target.rtype.group, target.name)

    async def _serve(self, request: web.Request, target: Target) -> web.StreamResponse:
        method = request.method
        fault = self._injected_fault(request, target)
        if fault is not None:
            raise fault
        verb = request_verb(method, bool(target.name), _flag(request, "watch"))
        resource = target.rtype.plural + (f"/{target.subresource}" if target.subresource else "")
        if not await self.holds.admit(request, verb, resource, self._ns(target), target.name):
            return web.Response(status=499, text="dropped: the client went away while the request was held")
        if target.rtype.verbs == ("create",) or target.subresource == "token":
            return await self._answer_review(request, target)
        if target.subresource and target.subresource not in ("status", "scale"):
            raise unknown_resource()
        if target.subresource == "scale" and target.rtype.scale is None:
            raise unknown_resource()
        if target.subresource == "status" and not target.rtype.has_status:
            raise unknown_resource()
        if not target.name:
            if method == "GET":
                if _flag(request, "watch"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target)
            raise method_not_allowed(f"the server does not allow this method on the requested resource: {method}")
        if method == "GET":
            return self._get(request, target)
        if method == "PUT":
            return await self._update(request, target)
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE":
            return await self._delete(request, target)
        raise method_not_allowed(f"the server does not allow this method on the requested resource: {method}")

    async def _answer_review(self, request: web.Request, target: Target) -> web.Response:
        """The kinds answered on create and never stored: TokenRequest and the access reviews."""
        is_token = target.subresource == "token" and target.rtype.key == "/serviceaccounts"
        if request.method != "POST" or (target.name and not is_token) or (target.subresource and not is_token):
            raise method_not_allowed(
                f"the server does not allow this method on the requested resource: {request.method}"
            )
        body = await self._read_body(request)
        if not isinstance(body, dict):
            raise bad_request("the request body must be an object")
        if is_token:
            return _json(self.access.token_request(self._ns(target), target.name, body), 201)
        if target.rtype.kind == "SelfSubjectReview":
            return _json(self.access.self_subject_review(request[USER]), 201)
        return _json(self.access.access_review(request[USER], target.rtype.kind, body), 201)

    def _ns(self, target: Target) -> str:
        return target.namespace or ""

    def _render(
        self,
        request: web.Request,
        target: Target,
        obj: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        if _wants_table(request) and not target.subresource:
            return _json(
                tables.table(
                    target.rtype,
                    [obj],
                    obj["metadata"].get("resourceVersion", ""),
                    request.query.get("includeObject", "Metadata"),
                ),
                status,
                headers,
            )
        if obj.get("apiVersion") != target.rtype.api_version and obj.get("kind") == target.rtype.kind:
            # Served versions of a CRD share storage and differ only in apiVersion (no conversion).
            obj = {**obj, "apiVersion": target.rtype.api_version}
        return _json(obj, status, headers)

    def _get(self, request: web.Request, target: Target) -> web.Response:
        if target.subresource == "scale":
            return _json(self.store.get_scale(target.rtype, self._ns(target), target.name))
        return self._render(request, target, self.store.get(target.rtype, self._ns(target), target.name))

    def _list(self, request: web.Request, target: Target) -> web.Response:
        q = request.query
        try:
            limit = int(q.get("limit", "0") or 0)
        except ValueError as exc:
            raise bad_request(f"invalid limit {q.get('limit')!r}: limit must be a whole number") from exc
        if limit < 0:
            raise bad_request(f"limit: Invalid value: {limit}: must be greater than or equal to 0")
        items, rv, token, remaining = self.store.list(
            target.rtype,
            target.namespace,
            q.get("labelSelector", ""),
            q.get("fieldSelector", ""),
            limit,
            q.get("continue", ""),
        )
        if _wants_table(request):
            return _json(
                tables.table(
                    target.rtype,
                    items,
                    rv,
                    q.get("includeObject", "Metadata"),
                    continue_token=token,
                    remaining=remaining,
                )
            )
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if token:
            metadata["continue"] = token
        if remaining is not None:
            metadata["remainingItemCount"] = remaining
        api_version = target.rtype.api_version
        body = {
            "kind": f"{target.rtype.kind}List",
            "apiVersion": api_version,
            "metadata": metadata,
            "items": [i if i.get("apiVersion") == api_version else {**i, "apiVersion": api_version} for i in items],
        }
        return _json(body)

    async def _read_body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            raise bad_request("the request body is empty")
        content_type = request.content_type
        if content_type == protobuf.MEDIA_TYPE and request.method in ("POST", "PUT"):
            return _decode_protobuf(raw)
        try:
            if content_type in (APPLY_PATCH, APPLY_PATCH_CBOR) or content_type.endswith("yaml"):
                body = yaml.safe_load(raw)
            else:
                body = limits.decode_json(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the request body could not be decoded: {exc}") from exc
        except RecursionError as exc:
            raise limits.too_deep() from exc
        limits.check_nesting(body)
        return body

    def _write_options(self, request: web.Request) -> dict[str, Any]:
        q = request.query
        validation = q.get("fieldValidation", "")
        if validation not in ("", "Ignore", "Warn", "Strict"):
            raise bad_request(
                f'fieldValidation: Unsupported value: {validation!r}: supported values: "Ignore", "Warn", "Strict"'
            )
        dry_run = q.getall("dryRun", [])
        for value in dry_run:
            if value != "All":
                raise bad_request(f'dryRun: Unsupported value: {value!r}: supported values: "All"')
        return {"dry_run": bool(dry_run), "field_validation": validation, "field_manager": q.get("fieldManager", "")}

    def _warnings(self, request: web.Request, target: Target, body: Any) -> dict[str, str] | None:
        if request.query.get("fieldValidation") != "Warn" or not isinstance(body, dict):
            return None
        warnings = admission.unknown_field_warnings(target.rtype, body)
        if not warnings:
            return None
        return {"Warning": ", ".join(f"299 - {json.dumps(w)}" for w in warnings)}

    async def _create(self, request: web.Request, target: Target) -> web.Response:
        if target.rtype.namespaced and target.namespace is None:
            raise method_not_allowed("the server does not allow this method on the requested resource")
        body = await self._read_body(request)
        options = self._write_options(request)
        obj = self.store.create(target.rtype, self._ns(target), body, **options)
        return self._render(request, target, obj, 201, self._warnings(request, target, body))

    async def _update(self, request: web.Request, target: Target) -> web.Response:
        body = await self._read_body(request)
        options = self._write_options(request)
        existed = self.store.find(target.rtype, self._ns(target), target.name) is not None
        obj = self.store.update(target.rtype, self._ns(target), target.name, body, target.subresource, **options)
        return self._render(
            request, target, obj, 200 if existed or target.subresource else 201, self._warnings(request, target, body)
        )

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        body = await self._read_body(request)
        options = self._write_options(request)
        obj, created = self.store.patch(
            target.rtype,
            self._ns(target),
            target.name,
            request.content_type,
            body,
            target.subresource,
            options["dry_run"],
            options["field_manager"],
            _flag(request, "force"),
            options["field_validation"],
        )
        # Merge-style patches are partial objects, so their unknown fields are found the same way.
        json_patch = request.content_type == "application/json-patch+json"
        warnings = None if json_patch else self._warnings(request, target, body)
        return self._render(request, target, obj, 201 if created else 200, warnings)

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        options: dict[str, Any] = {}
        if raw:
            try:
                options = limits.decode_json(raw)
            except ValueError as exc:
                raise bad_request(f"the DeleteOptions body could not be decoded: {exc}") from exc
            except RecursionError as exc:
                raise limits.too_deep() from exc
            if not isinstance(options, dict):
                raise bad_request("DeleteOptions must be an object")
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents") in ("true", "1"):
            options.setdefault("propagationPolicy", "Orphan")
        if options.get("orphanDependents") is True:
            options.setdefault("propagationPolicy", "Orphan")
        if "dryRun" in q:
            options["dryRun"] = q.getall("dryRun")
        return options

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        if target.subresource:
            raise method_not_allowed("the server does not allow this method on the requested resource")
        options = await self._delete_options(request)
        obj, code = self.store.delete(
            target.rtype,
            self._ns(target),
            target.name,
            options.get("propagationPolicy") or "",
            options.get("preconditions"),
            bool(options.get("dryRun")),
        )
        return self._render(request, target, obj, code)

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        options = await self._delete_options(request)
        q = request.query
        deleted = self.store.delete_collection(
            target.rtype,
            target.namespace,
            q.get("labelSelector", ""),
            q.get("fieldSelector", ""),
            options.get("propagationPolicy") or "",
        )
        return _json(
            {
                "kind": f"{target.rtype.kind}List",
                "apiVersion": target.rtype.api_version,
                "metadata": {"resourceVersion": self.store.resource_version},
                "items": deleted,
            }
        )

    # ------------------------------------------------------------------ watch

    def _watch_cut_at(self, request: web.Request, timeout: float) -> float | None:
        """When `--faults` cuts this watch stream (monotonic time), if before its timeout."""
        faults = self.faults
        if faults is None or not faults.applies_to(request.headers.get("User-Agent", "")):
            return None
        lifetime = faults.watch_lifetime()
        return time.monotonic() + lifetime if lifetime is not None and lifetime < timeout else None

    def _cut(self, request: web.Request, cut_at: float | None) -> bool:
        """An injected drop, once its time came: the connection closes with no end of the stream."""
        if cut_at is None or time.monotonic() < cut_at or request.transport is None or self.faults is None:
            return False
        self.faults.dropped()
        request.transport.close()
        return True

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        q = request.query
        try:
            timeout = float(int(q.get("timeoutSeconds", "") or DEFAULT_WATCH_TIMEOUT))
        except ValueError as exc:
            raise bad_request(
                f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}: timeoutSeconds is a whole number of seconds"
            ) from exc
        if timeout < 0:
            raise bad_request(f"timeoutSeconds: Invalid value: {int(timeout)}: must be greater than or equal to 0")
        send_initial = q.get("sendInitialEvents", "").lower() == "true"
        bookmarks = _flag(request, "allowWatchBookmarks")
        as_table = _wants_table(request)
        include = q.get("includeObject", "Metadata")
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
        )
        try:
            watcher, backlog = self.store.watch(
                target.rtype,
                target.namespace,
                q.get("resourceVersion", ""),
                q.get("labelSelector", ""),
                q.get("fieldSelector", ""),
                send_initial,
            )
            # The state the initial events describe: later events are queued and follow the bookmark.
            initial_rv = self.store.resource_version
        except ApiError as exc:
            if exc.code != 410:
                raise
            # An expired resourceVersion is reported inside the stream, as the real server does.
            await response.prepare(request)
            await response.write(
                json.dumps({"type": "ERROR", "object": {**exc.status(), "reason": "Expired"}}).encode() + b"\n"
            )
            return response
        await response.prepare(request)
        self._streams.add(response)
        first_table = True
        api_version = target.rtype.api_version

        def encode(event_type: str, obj: dict[str, Any]) -> bytes:
            nonlocal first_table
            if as_table and event_type != "BOOKMARK":
                obj = tables.table(
                    target.rtype, [obj], obj["metadata"].get("resourceVersion", ""), include, with_columns=first_table
                )
                first_table = False
            elif event_type != "BOOKMARK":
                if obj.get("apiVersion") != api_version:
                    obj = {**obj, "apiVersion": api_version}
                return self.encodings.line(event_type, obj)
            return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"

        def bookmark(initial_end: bool = False) -> bytes:
            # The initial-events-end bookmark must not claim events still queued behind it.
            meta: dict[str, Any] = {"resourceVersion": initial_rv if initial_end else self.store.resource_version}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return encode("BOOKMARK", {"kind": target.rtype.kind, "apiVersion": api_version, "metadata": meta})

        cut_at = self._watch_cut_at(request, timeout)
        deadline = cut_at if cut_at is not None else time.monotonic() + timeout
        try:
            if backlog:
                first = b"".join(encode(t, o) for t, o in backlog)
                await self.write_turns.wait(len(first))
                await response.write(first)
            if send_initial and bookmarks:
                await response.write(bookmark(initial_end=True))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(
                        watcher.queue.get(), min(remaining, BOOKMARK_INTERVAL) if bookmarks else remaining
                    )
                except TimeoutError:
                    if bookmarks and deadline - time.monotonic() > 0:
                        await response.write(bookmark())
                    continue
                if item is None:
                    break
                chunk = [encode(*item)]
                while not watcher.queue.empty():
                    more = watcher.queue.get_nowait()
                    if more is None:
                        watcher.closed = True
                        break
                    chunk.append(encode(*more))
                data = b"".join(chunk)
                await self.write_turns.wait(len(data))
                await response.write(data)
                if watcher.closed and watcher.queue.empty():
                    break
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.stop_watch(watcher)
            self._streams.discard(response)
        if self._cut(request, cut_at):
            return response
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response
