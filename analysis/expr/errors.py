"""The two errors a condition raises (syntax, evaluation), and the internal failures the parser and the
interpreter raise before the field name and the source are attached."""

from __future__ import annotations

__all__ = ["ConditionEvalError", "ConditionSyntaxError", "EvalFailure", "SyntaxFailure", "one_line"]


class ConditionSyntaxError(ValueError):
    """The expression cannot be parsed. ``position`` is the 0-based offset of the problem.

    The message shows a 1-based column (as editors and expr itself do), e.g.
    ``successCondition: unexpected token ")" at column 14: result[0] >= )``.
    """

    def __init__(self, field_name: str, source: str, position: int, detail: str) -> None:
        self.field = field_name
        self.source = source
        self.position = position
        self.detail = detail
        super().__init__(f"{field_name}: {detail} at {_location(source, position)}: {one_line(source)}")


class ConditionEvalError(ValueError):
    """The expression parsed but could not be evaluated against this measurement."""

    def __init__(self, field_name: str, source: str, detail: str) -> None:
        self.field = field_name
        self.source = source
        self.detail = detail
        super().__init__(f'{field_name} "{one_line(source)}": {detail}')


class SyntaxFailure(Exception):
    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position
        self.detail = detail


class EvalFailure(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _location(source: str, position: int) -> str:
    if "\n" not in source:
        return f"column {position + 1}"
    line = source.count("\n", 0, position) + 1
    column = position - (source.rfind("\n", 0, position) + 1) + 1
    return f"line {line}, column {column}"


def one_line(source: str, limit: int = 300) -> str:
    # Messages end up in Kubernetes conditions and events: keep them on one line and bounded.
    text = " ".join(source.split("\n")).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
