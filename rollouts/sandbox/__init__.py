"""A local Kubernetes API server emulator with simulated workloads."""
