"""`kubectl rollouts dashboard`: a local web UI over the plugin's own API access (see README "Dashboard")."""
