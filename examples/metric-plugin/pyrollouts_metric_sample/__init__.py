"""A sample metric provider plugin: ``provider: {plugin: {example.com/constant: {value: "0.5"}}}`` measures
the number ``value`` (after ``{{args.x}}`` substitution), judged by the metric's conditions.

A plugin class has ``measure`` (and ``resume`` / ``terminate`` for measurements that take a while), and
may have ``spec_problems`` (checked when a template is created) and a ``build(setup)`` classmethod (to get
the controller's API client). ``ImmediateProvider`` supplies the rest for one-call measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.providers.base import Context, ImmediateProvider, Measurement, format_time, judged

NAME = "example.com/constant"


class ConstantProvider(ImmediateProvider):
    kind = "plugin"

    @staticmethod
    def spec_problems(spec: Mapping[str, Any], where: str, metric: Mapping[str, Any] | None) -> list[str]:
        value = spec.get("value")
        if value is None:
            return [f"{where}.value: required: the number to measure, such as \"0.5\""]
        if "{{" in str(value):
            return []
        try:
            float(value)
        except (TypeError, ValueError):
            return [f'{where}.value: Invalid value: "{value}": not a number']
        return []

    async def measure(self, metric: Mapping[str, Any], context: Context) -> Measurement:
        config = metric["provider"]["plugin"][NAME]
        value = float(config["value"])  # a ValueError is the plugin's Error measurement, named by pyrollouts
        return judged(metric, value, format_time(context.now), {"plugin": NAME})
