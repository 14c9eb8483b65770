"""Metric providers: Prometheus, Web, Job and the statistical judge, registered by their key in a metric's
``provider`` block in :mod:`analysis.providers.registry`."""
