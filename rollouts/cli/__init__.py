"""The kubectl plugin: `kubectl rollouts ...`."""
