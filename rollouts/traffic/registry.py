"""Which router serves which key of `strategy.canary.trafficRouting`.

`ROUTERS` maps a key to "module:Class"; a router module plugs in with one line here. Classes are
imported on first use, so a router module never imports the others. Several keys at once give
several routers, driven together (the reconciler does not know which ones it drives).

Third-party routers (Argo's `trafficRouting.plugins: {<name>: {...}}`) are the entry points of the
group `pyrollouts.traffic_routers`: the entry point's name is the plugin's name, its object a class
built from a `RouterContext` (with `plugin` set) like the built-in ones. Installed plugins are listed
once per process (a newly installed one needs a restart, as Argo loads its plugins at start).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rollouts.traffic.router import FollowsReferences, ObjectRef, RoutedKind, Router, RoutingProblem

ROUTERS: dict[str, str] = {
    "nginx": "rollouts.traffic.nginx:NginxRouter",
    "smi": "rollouts.traffic.smi:SmiRouter",
    "istio": "rollouts.traffic.istio:IstioRouter",
    "gatewayAPI": "rollouts.traffic.gatewayapi:GatewayAPIRouter",
    "alb": "rollouts.traffic.alb:AlbRouter",
    "traefik": "rollouts.traffic.traefik:TraefikRouter",
    "apisix": "rollouts.traffic.apisix:ApisixRouter",
    "ambassador": "rollouts.traffic.ambassador:AmbassadorRouter",
    "appMesh": "rollouts.traffic.appmesh:AppMeshRouter",
}

# Keys of trafficRouting that are settings shared by every router, not routers.
SHARED_KEYS = frozenset({"maxTrafficWeight", "managedRoutes"})

PLUGINS = "plugins"  # trafficRouting.plugins: {<plugin name>: <its config>}
ENTRY_POINT_GROUP = "pyrollouts.traffic_routers"

FIELD = "spec.strategy.canary.trafficRouting"


@dataclass(frozen=True)
class RouterContext:
    """What a router is built from: its own `trafficRouting.<key>` entry and the Rollout around it."""

    key: str
    config: Mapping[str, Any]
    rollout: str
    namespace: str
    stable_service: str
    canary_service: str
    traffic_routing: Mapping[str, Any] = field(default_factory=dict)
    plugin: str = ""  # for a plugin: its name under trafficRouting.plugins (key is then "plugins")

    @property
    def path(self) -> str:
        return f"{FIELD}.{PLUGINS}.{self.plugin}" if self.plugin else f"{FIELD}.{self.key}"


def router_class(key: str) -> type[Any] | None:
    target = ROUTERS.get(key)
    if target is None:
        return None
    module_name, _, class_name = target.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module_name), class_name)
    return cls


def routed_kinds() -> list[RoutedKind]:
    """Every kind the routers of `ROUTERS` and the installed router plugins read (their `KINDS`), once
    each, built-in routers first. A plugin without `KINDS` (or one that fails to load) is left out: its
    objects are read with a GET on every pass instead of watched."""
    kinds: list[RoutedKind] = []
    for cls in [router_class(key) for key in ROUTERS] + plugin_router_classes():
        for kind in getattr(cls, "KINDS", ()):
            if isinstance(kind, RoutedKind) and kind not in kinds:
                kinds.append(kind)
    return kinds


def plugin_router_classes() -> list[type[Any]]:
    """The installed router plugins' classes; one that fails to import is skipped here (the Rollouts that
    name it are InvalidSpec with the import error)."""
    classes = []
    for entry_point in installed_plugins().values():
        try:
            classes.append(entry_point.load())
        except Exception:  # a broken plugin must not take the controller down
            continue
    return classes


def build_routers(
    traffic_routing: Mapping[str, Any] | None,
    rollout: str,
    namespace: str,
    stable_service: str,
    canary_service: str,
) -> tuple[list[Router], list[RoutingProblem]]:
    """The routers a `trafficRouting` block names, in the order of `ROUTERS`, and the keys we cannot serve."""
    if not traffic_routing:
        return [], []
    routers: list[Router] = []
    problems: list[RoutingProblem] = []
    for key in traffic_routing:
        if key in SHARED_KEYS or key in ROUTERS or key == PLUGINS:
            continue
        problems.append(
            RoutingProblem(
                None,
                f"{FIELD}.{key}",
                f"traffic router {key!r} is not supported by this controller; use one of: "
                + ", ".join(sorted(ROUTERS)),
            )
        )
    for key in ROUTERS:
        config = traffic_routing.get(key)
        if config is None:
            continue
        cls = router_class(key)
        assert cls is not None
        context = RouterContext(
            key=key,
            config=config if isinstance(config, Mapping) else {},
            rollout=rollout,
            namespace=namespace,
            stable_service=stable_service,
            canary_service=canary_service,
            traffic_routing=traffic_routing,
        )
        routers.append(cls(context))
    plugins = traffic_routing.get(PLUGINS)
    for name, config in (plugins.items() if isinstance(plugins, Mapping) else ()):
        context = RouterContext(
            key=PLUGINS,
            config=config if isinstance(config, Mapping) else {},
            rollout=rollout,
            namespace=namespace,
            stable_service=stable_service,
            canary_service=canary_service,
            traffic_routing=traffic_routing,
            plugin=str(name),
        )
        router, problem = _plugin_router(context)
        if router is not None:
            routers.append(router)
        if problem is not None:
            problems.append(problem)
    return routers, problems


@functools.cache
def installed_plugins() -> dict[str, importlib.metadata.EntryPoint]:
    """The router plugins installed in this process's environment, by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _plugin_router(context: RouterContext) -> tuple[Router | None, RoutingProblem | None]:
    entry_point = installed_plugins().get(context.plugin)
    if entry_point is None:
        installed = ", ".join(sorted(installed_plugins())) or "none"
        return None, RoutingProblem(
            None,
            context.path,
            f"traffic router plugin {context.plugin!r} is not installed (installed: {installed}): install the "
            f"package whose entry point {context.plugin!r} is in group {ENTRY_POINT_GROUP!r} beside the controller",
        )
    try:
        router: Router = entry_point.load()(context)
    except Exception as exc:  # a broken plugin must not take the controller down
        return None, RoutingProblem(
            None,
            context.path,
            f"traffic router plugin {context.plugin!r} ({entry_point.value}) failed to load: "
            f"{type(exc).__name__}: {exc}; fix or reinstall the plugin's package",
        )
    return router, None


def followed_refs(routers: Sequence[Router], live: Mapping[ObjectRef, Mapping[str, Any] | None]) -> list[ObjectRef]:
    """The objects the routers' objects point at (read after them), those not read yet."""
    refs: list[ObjectRef] = []
    for router in routers:
        if isinstance(router, FollowsReferences):
            refs += [ref for ref in router.followed_objects(live) if ref not in live and ref not in refs]
    return refs


def router_keys(routers: Sequence[Router]) -> list[str]:
    return [r.name for r in routers]


def missing_services(context: RouterContext) -> list[RoutingProblem]:
    """For routers that split between the two Services: a problem per Service the Rollout does not name."""
    problems = []
    for key, name in (("canaryService", context.canary_service), ("stableService", context.stable_service)):
        if not name:
            problems.append(
                RoutingProblem(
                    None,
                    f"spec.strategy.canary.{key}",
                    f"Required value: trafficRouting.{context.key} splits traffic between canaryService and "
                    f"stableService: set {key}",
                )
            )
    return problems
