"""Traffic routers: pure transformations of routing objects (Ingress, VirtualService, TrafficSplit,
HTTPRoute, ...) towards a desired split. The protocol lives in `router.py`; one module per router;
`registry.py` picks the routers a Rollout's `trafficRouting` names. The reconciler knows only the
protocol."""
