"""The controller process: kopf wiring, work queue, reconcilers, the API client and caches, metrics."""
