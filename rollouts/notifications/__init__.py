"""Notifications with Argo's model (its notifications engine): services, templates and triggers from the
``pyrollouts-notification-configmap`` ConfigMap (``$name`` values from ``pyrollouts-notification-secret``),
subscriptions by annotation on each Rollout, and delivery to Slack, Microsoft Teams, email, webhooks and
whatever Apprise reaches.

Everything here is pure (parsing, rendering, deciding who gets what) except :mod:`.delivery`, which sends;
none of it talks to the API server: the controller's :mod:`rollouts.controller.notifier` and the plugin read
the ConfigMap and Secret and hand their ``data`` in."""
