"""Metric providers: Prometheus, Web, Job and the statistical judge (registered in analysis.controller)."""
