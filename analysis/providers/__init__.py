"""Metric providers: Prometheus, Web, Job and the statistical judge (registered in rollouts.controller.analysisruns)."""
