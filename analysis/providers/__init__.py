"""Metric providers: Prometheus, Web, Job."""
