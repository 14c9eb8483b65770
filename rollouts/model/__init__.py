"""Typed views of the API objects and the Rollout rules shared by the controller, the plugin and the dashboard."""
