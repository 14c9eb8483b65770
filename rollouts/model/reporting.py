"""How the controller makes itself known in the cluster, for `kubectl rollouts version` to read back."""

from __future__ import annotations

# Every Event the controller records carries its version under this annotation: Events are the
# controller's own objects, so the plugin can tell which controller version acts in a namespace without
# the controller writing anything into the user's (Git-managed) objects.
CONTROLLER_VERSION_ANNOTATION = "pyrollouts.io/controller-version"
