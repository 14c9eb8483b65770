"""Statistical judges: canary against baseline."""
