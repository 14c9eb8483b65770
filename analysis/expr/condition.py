"""The public API of the condition language: compile a condition once (cached), evaluate it against a
measurement, check its syntax for admission and lint."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Final

from analysis.expr.errors import ConditionEvalError, ConditionSyntaxError, EvalFailure, SyntaxFailure
from analysis.expr.interpreter import Interpreter
from analysis.expr.nodes import Node
from analysis.expr.parser import parse
from analysis.expr.values import show

__all__ = [
    "DEFAULT_VARIABLES",
    "Condition",
    "check_syntax",
    "compile_condition",
    "evaluate_condition",
    "evaluate_expression",
]

DEFAULT_VARIABLES: Final = ("result",)


@dataclass(frozen=True)
class Condition:
    """A parsed expression; immutable, reusable and safe to share between threads."""

    source: str
    field: str
    variables: frozenset[str]
    tree: Node = dc_field(repr=False, compare=False)

    def evaluate_value(self, env: Mapping[str, Any]) -> Any:
        """Evaluate to any value. Raises :class:`ConditionEvalError`."""
        interpreter = Interpreter(self.source, env)
        try:
            return interpreter.eval(self.tree)
        except EvalFailure as exc:
            raise ConditionEvalError(self.field, self.source, exc.detail) from None
        except RecursionError:
            raise ConditionEvalError(self.field, self.source, "expression is nested too deeply") from None

    def evaluate(self, env: Mapping[str, Any]) -> bool:
        """Evaluate as a condition: the value must be a bool."""
        value = self.evaluate_value(env)
        if not isinstance(value, bool):
            raise ConditionEvalError(
                self.field, self.source, f"condition must evaluate to a bool, got {show(value)}"
            )
        return value


def compile_condition(
    source: str, field: str = "condition", variables: Collection[str] = DEFAULT_VARIABLES
) -> Condition:
    """Parse ``source`` once. ``variables`` are the names it may use (``result`` by default).

    Raises :class:`ConditionSyntaxError` naming ``field`` and the position of the problem.
    """
    return _compile_cached(source, field, frozenset(variables))


@functools.lru_cache(maxsize=512)
def _compile_cached(source: str, field_name: str, variables: frozenset[str]) -> Condition:
    try:
        tree = parse(source, variables)
    except SyntaxFailure as exc:
        raise ConditionSyntaxError(field_name, source, exc.position, exc.detail) from None
    return Condition(source, field_name, variables, tree)


def check_syntax(
    source: str, field: str, variables: Collection[str] = DEFAULT_VARIABLES
) -> ConditionSyntaxError | None:
    """For admission and linting: the syntax error, or ``None`` when ``source`` parses."""
    try:
        compile_condition(source, field, variables)
    except ConditionSyntaxError as exc:
        return exc
    return None


def evaluate_condition(source: str, result: Any, field: str = "condition") -> bool:
    """Compile (cached) and evaluate ``source`` with ``result`` bound to the measurement value."""
    return compile_condition(source, field).evaluate({"result": result})


def evaluate_expression(source: str, env: Mapping[str, Any], field: str = "expression") -> Any:
    """Evaluate a non-boolean expression over ``env`` (its keys are the known names)."""
    return compile_condition(source, field, frozenset(env)).evaluate_value(env)
