"""pyrollouts: the Rollout controller, its sandbox cluster and its kubectl plugin."""

__version__ = "0.1.0"
