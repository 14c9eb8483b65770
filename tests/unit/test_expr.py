"""The successCondition / failureCondition evaluator (analysis/expr/)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from analysis.expr.condition import check_syntax, compile_condition, evaluate_condition, evaluate_expression
from analysis.expr.errors import ConditionEvalError, ConditionSyntaxError
from analysis.expr.parser import MAX_SOURCE_LENGTH


def value(source: str, result: Any = None, **env: Any) -> Any:
    return evaluate_expression(source, {"result": result, **env})


def eval_error(source: str, result: Any = None, field: str = "successCondition") -> str:
    with pytest.raises(ConditionEvalError) as info:
        compile_condition(source, field).evaluate({"result": result})
    return str(info.value)


def syntax_error(source: str, field: str = "successCondition") -> ConditionSyntaxError:
    with pytest.raises(ConditionSyntaxError) as info:
        compile_condition(source, field)
    return info.value


# --------------------------------------------------------------------------- typical Argo conditions


@pytest.mark.parametrize(
    ("source", "result", "expected"),
    [
        ("result[0] <= 0.01", [0.005], True),
        ("result[0] <= 0.01", [0.02], False),
        ("result[0] >= 0.95", [0.95], True),
        ("all(result, # < 0.05)", [0.01, 0.04], True),
        ("all(result, # < 0.05)", [0.01, 0.06], False),
        ("all(result, # < 0.05)", [], True),
        ("any(result, # > 0.5)", [0.1, 0.6], True),
        ("isNaN(result) || result < 5", math.nan, True),
        ("isNaN(result) || result < 5", 4, True),
        ("isNaN(result) || result < 5", 7.5, False),
        ("default(result, 0) >= 0.95", None, False),
        ("default(result, 1) >= 0.95", None, True),
        ("default(result, 0) >= 0.95", 0.97, True),
        ("asFloat(result) > 0.5", "0.7", True),
        ("asFloat(result) > 0.5", "0.3", False),
        ("asInt(result) == 200", "200", True),
        ("len(result) == 0", [], True),
        ("len(result) == 0 || result[0] < 1", [], True),
        ("result.status == 'ok' && result.latency_ms < 200", {"status": "ok", "latency_ms": 120}, True),
        (
            "(result.requests_made * result.requests_succeeded / 100) >= 90",
            {"requests_made": 100, "requests_succeeded": 95},
            True,
        ),
        ("result == true", True, True),
        ("isNil(result)", None, True),
        ("isNil(result)", [], False),
        ("isInf(result[0])", [math.inf], True),
    ],
)
def test_typical_argo_conditions(source: str, result: Any, expected: bool) -> None:
    assert evaluate_condition(source, result, "successCondition") is expected


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("42", 42),
        ("1_000", 1000),
        ("0x1F", 31),
        ("0b101", 5),
        ("0o17", 15),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("1.5E-2", 0.015),
        ("'single'", "single"),
        ('"double"', "double"),
        ("`raw \\n`", "raw \\n"),
        (r'"tab\there"', "tab\there"),
        (r'"quote\"s"', 'quote"s'),
        (r"'it\'s'", "it's"),
        (r'"\u00e9\x41\101"', "éAA"),
        ("true", True),
        ("false", False),
        ("nil", None),
        ("[1, 'a', nil]", [1, "a", None]),
        ("[1, 2,]", [1, 2]),
        ("[]", []),
        ("{a: 1, 'b c': 2, (1 + 1): 3}", {"a": 1, "b c": 2, 2: 3}),
        ("1 // a comment", 1),
        ("/* block */ 2", 2),
    ],
)
def test_literals(source: str, expected: Any) -> None:
    assert value(source) == expected
    assert type(value(source)) is type(expected)


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # arithmetic: int op int stays int except "/" and "**", like expr
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("5 - 7", -2),
        ("3 * 4", 12),
        ("3 * 0.5", 1.5),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),  # Go truncates toward zero
        ("7 % -3", 1),
        ("2 ** 10", 1024.0),
        ("2 ^ 3", 8.0),
        ("2 ** 3 ** 2", 512.0),  # right associative
        ("-3", -3),
        ("+3", 3),
        ("- -3", 3),
        ("'ab' + 'cd'", "abcd"),
        # precedence
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("-2 ** 2", -4.0),
        ("2 * 3 ** 2", 18.0),
        ("1 + 2 == 3", True),
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("!true == false", True),  # "!" binds tighter than "==" in expr
        ("not (1 > 2)", True),
        ("1 < 2 == true", True),
        # comparisons, mixed number types
        ("1 == 1.0", True),
        ("1 != 1.0", False),
        ("1 < 1.5", True),
        ("2 <= 2", True),
        ("3 > 2.9", True),
        ("3 >= 3.0", True),
        ("'a' < 'b'", True),
        ("'b' >= 'a'", True),
        ("1 < 2 < 3", True),  # chained like expr: 1 < 2 && 2 < 3
        ("3 > 2 > 2", False),
        # equality never raises across types
        ("1 == '1'", False),
        ("1 != '1'", True),
        ("nil == nil", True),
        ("nil == 0", False),
        ("true == 1", False),
        ("[1, 2] == [1, 2.0]", True),
        ("[1, 2] == [2, 1]", False),
        ("{a: 1} == {a: 1}", True),
        ("{a: 1} == {a: 2}", False),
        # membership and string operators
        ("2 in [1, 2, 3]", True),
        ("2.0 in [1, 2, 3]", True),
        ("5 in [1, 2, 3]", False),
        ("5 not in [1, 2, 3]", True),
        ("'a' in {a: 1}", True),
        ("'z' in {a: 1}", False),
        ("1 in nil", False),
        ("'abc' matches '^a.c$'", True),
        ("'abc' matches 'b'", True),  # unanchored like Go's MatchString
        ("'abc' not matches '^b'", True),
        ("'hello' contains 'ell'", True),
        ("'hello' not contains 'z'", True),
        ("'hello' startsWith 'he'", True),
        ("'hello' endsWith 'lo'", True),
        ("'hello' not startsWith 'lo'", True),
        # logic words
        ("true and false", False),
        ("true or false", True),
        ("not false", True),
        ("!false", True),
        # ternary and nil coalescing
        ("true ? 1 : 2", 1),
        ("false ? 1 : 2", 2),
        ("false ? 1 : true ? 3 : 4", 3),
        ("1 > 2 ? 'a' : 'b'", "b"),
        ("nil ?? 5", 5),
        ("0 ?? 5", 0),
        ("nil ?? nil ?? 7", 7),
        ("(nil ?? 1) + 1", 2),
    ],
)
def test_operators(source: str, expected: Any) -> None:
    got = value(source)
    assert got == expected
    assert type(got) is type(expected)


def test_division_follows_go_float_semantics() -> None:
    assert value("1 / 0") == math.inf
    assert value("-1 / 0") == -math.inf
    assert math.isnan(value("0 / 0"))
    assert value("2 ** 100000") == math.inf  # no giant integer is ever built
    assert math.isnan(value("(-8) ** 0.5"))
    assert value("0 ** -1") == math.inf


def test_nan_comparisons_are_false_not_errors() -> None:
    nan = math.nan
    assert evaluate_condition("result < 1", nan) is False
    assert evaluate_condition("result >= 1", nan) is False
    assert evaluate_condition("result == result", nan) is False


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("7 % 0", "integer divide by zero"),
        ("7.5 % 2", '"%" needs two ints'),
        ("'a' - 1", "invalid operation"),
        ("'a' + 1", "invalid operation"),
        ("'a' < 1", "mismatched types"),
        ("-'a'", 'unary "-"'),
        ("!1", "must be a bool"),
        ("1 ? 2 : 3", "must be a bool"),
        ("1 in 'abc'", 'operator "in" needs an array or a map'),
        ("1 matches 'a'", "needs two strings"),
        ("'x' contains 1", "needs two strings"),
        ("'a' matches '(' + ''", "invalid regular expression"),
    ],
)
def test_operator_type_errors(source: str, message: str) -> None:
    assert message in eval_error(source)


def test_boolean_operators_short_circuit() -> None:
    # The right side would fail (index out of range / non-bool) if it were evaluated.
    assert evaluate_condition("false && result[5] > 1", []) is False
    assert evaluate_condition("true || result[5] > 1", []) is True
    assert evaluate_condition("false and 1", []) is False
    assert evaluate_condition("true or 1", []) is True
    assert evaluate_condition("len(result) > 0 ? result[0] > 1 : true", []) is True
    assert value("1 ?? result[9]", []) == 1


def test_boolean_operators_require_booleans() -> None:
    assert 'left operand of "&&" (1) must be a bool, got int (1)' in eval_error("1 && true")
    assert 'right operand of "||"' in eval_error("false || 'yes'")


# --------------------------------------------------------------------------- member access and indexing


def test_member_access_on_maps() -> None:
    data = {"a": {"b": [10, 20]}, "x-y": 3}
    assert value("result.a.b[1]", data) == 20
    assert value("result['a']['b'][-1]", data) == 20
    assert value("result['x-y']", data) == 3
    assert value("result.missing", data) is None  # a missing key is nil, as for Go maps
    assert value("result.missing?.deeper", data) is None
    assert value("result?.a?.b", None) is None
    assert value("result?.[0]", None) is None
    assert value("result.missing ?? 'fallback'", data) == "fallback"


def test_indexing_lists_and_strings() -> None:
    assert value("result[0]", [1, 2, 3]) == 1
    assert value("result[-1]", [1, 2, 3]) == 3
    assert value("result[-3]", [1, 2, 3]) == 1
    assert value("'abc'[1]", None) == "b"
    assert value("result[1:]", [1, 2, 3]) == [2, 3]
    assert value("result[:2]", [1, 2, 3]) == [1, 2]
    assert value("result[:]", [1, 2, 3]) == [1, 2, 3]
    assert value("result[-2:]", [1, 2, 3]) == [2, 3]
    assert value("result[1:99]", [1, 2, 3]) == [2, 3]  # clamped like expr
    assert value("result[2:1]", [1, 2, 3]) == []
    assert value("'hello'[1:3]", None) == "el"
    assert value("result[0]", (4, 5)) == 4  # tuples are arrays too


def test_index_errors_are_clear() -> None:
    assert "index 3 out of range: result has length 3" in eval_error("result[3] > 0", [1, 2, 3])
    assert "index -4 out of range" in eval_error("result[-4] > 0", [1, 2, 3])
    assert "array index must be an int, got string ('a')" in eval_error("result['a'] > 0", [1])
    assert "array index must be an int, got float" in eval_error("result[0.5] > 0", [1])
    assert 'cannot fetch field "x" from array result (use an index such as result[0])' in eval_error(
        "result.x > 0", [1]
    )
    assert "index 1 out of range: result[0] is an empty list" in eval_error("result[0][1] > 0", [[]])
    assert "cannot slice int (1)" in eval_error("result[1:] == nil", 1)
    assert 'cannot fetch field "x" from int (5)' in eval_error("result.x == 1", 5)


# --------------------------------------------------------------------------- empty / missing data


def test_empty_result_is_an_empty_list_not_a_crash() -> None:
    assert evaluate_condition("len(result) == 0", []) is True
    assert evaluate_condition("all(result, # < 1)", []) is True
    assert evaluate_condition("any(result, # < 1)", []) is False
    assert evaluate_condition("first(result) == nil", []) is True


def test_indexing_an_empty_result_is_an_eval_error_with_a_clear_message() -> None:
    with pytest.raises(ConditionEvalError) as info:
        evaluate_condition("result[0] < 0.05", [], "successCondition")
    assert str(info.value) == (
        'successCondition "result[0] < 0.05": index 0 out of range: '
        "result is an empty list (the query returned no data)"
    )
    assert info.value.field == "successCondition"
    assert info.value.source == "result[0] < 0.05"


def test_indexing_a_nil_result_names_the_missing_data() -> None:
    message = eval_error("result[0] < 1", None, "failureCondition")
    assert message.startswith('failureCondition "result[0] < 1": cannot fetch [0]: result is nil')
    assert "the query returned no data" in message
    assert 'cannot fetch field "a": result is nil' in eval_error("result.a == 1", None)


def test_comparing_a_whole_vector_hints_at_indexing() -> None:
    message = eval_error("result < 5", [1.0])
    assert "array ([1]) < int (5): mismatched types" in message
    assert "result[0]" in message


def test_condition_must_be_a_bool() -> None:
    with pytest.raises(ConditionEvalError) as info:
        evaluate_condition("result[0]", [0.5], "successCondition")
    assert str(info.value) == (
        'successCondition "result[0]": condition must evaluate to a bool, got float (0.5)'
    )
    assert "got nil" in eval_error("result", None)
    assert "got string ('yes')" in eval_error("'yes'")


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("source", "result", "expected"),
    [
        ("len(result)", [1, 2], 2),
        ("len('abc')", None, 3),
        ("len({a: 1})", None, 1),
        ("all(result, # > 0)", [1, 2], True),
        ("all(result, {# > 1})", [1, 2], False),
        ("any(result, # > 1)", [1, 2], True),
        ("any(result, # > 5)", [1, 2], False),
        ("none(result, # > 5)", [1, 2], True),
        ("none(result, # > 1)", [1, 2], False),
        ("one(result, # > 1)", [1, 2], True),
        ("one(result, # > 0)", [1, 2], False),
        ("filter(result, # % 2 == 0)", [1, 2, 3, 4], [2, 4]),
        ("map(result, # * 10)", [1, 2], [10, 20]),
        ("map(result, #.v)", [{"v": 1}, {"v": 2}], [1, 2]),
        ("map(result, .v)", [{"v": 1}, {"v": 2}], [1, 2]),
        ("filter(result, .ok)", [{"ok": True}, {"ok": False}], [{"ok": True}]),
        ("count(result, # > 1)", [1, 2, 3], 2),
        ("count([true, false, true])", None, 2),
        ("all(result, all(#, # > 0))", [[1, 2], [3]], True),  # nested closures: inner # shadows
        ("abs(-3)", None, 3),
        ("abs(-2.5)", None, 2.5),
        ("min(3, 1, 2)", None, 1),
        ("min(result)", [3.5, 1.5], 1.5),
        ("max(result)", [3, 7, 5], 7),
        ("max(1, [5, [9]], 3)", None, 9),
        ("max(result)", [], None),
        ("sum(result)", [1, 2, 3], 6),
        ("sum(result)", [1, 2.5], 3.5),
        ("sum(result, # * 2)", [1, 2], 6),
        ("sum(result)", [], 0),
        ("mean(result)", [1, 2, 3, 4], 2.5),
        ("mean(result)", [], 0.0),
        ("median(result)", [5, 1, 3], 3.0),
        ("median(result)", [4, 1, 3, 2], 2.5),
        ("median(result)", [], 0.0),
        ("ceil(1.2)", None, 2.0),
        ("ceil(3)", None, 3.0),
        ("floor(-1.2)", None, -2.0),
        ("round(2.5)", None, 3.0),  # half away from zero like Go, not banker's rounding
        ("round(-2.5)", None, -3.0),
        ("round(0.49999999999999994)", None, 0.0),
        ("round(1.4)", None, 1.0),
        ("int(3.9)", None, 3),
        ("int(-3.9)", None, -3),
        ("int('42')", None, 42),
        ("float(2)", None, 2.0),
        ("float('2.5')", None, 2.5),
        ("string(42)", None, "42"),
        ("string(1.0)", None, "1"),
        ("string(0.5)", None, "0.5"),
        ("string(1e21)", None, "1e+21"),
        ("string(0.00001)", None, "1e-05"),
        ("string(true)", None, "true"),
        ("string(nil)", None, "<nil>"),
        ("string([1, 'a'])", None, "[1 a]"),
        ("asInt('12')", None, 12),
        ("asInt('-12')", None, -12),
        ("asInt(3.9)", None, 3),
        ("asInt(7)", None, 7),
        ("asFloat('0.7')", None, 0.7),
        ("asFloat('1e-3')", None, 0.001),
        ("asFloat(3)", None, 3.0),
        ("isNaN(asFloat('NaN'))", None, True),
        ("isNaN(1.5)", None, False),
        ("isNaN(1)", None, False),
        ("isInf(asFloat('+Inf'))", None, True),
        ("isInf(-1 / 0)", None, True),
        ("isInf(1)", None, False),
        ("isNil(nil)", None, True),
        ("isNil(result)", 0, False),
        ("default(nil, 3)", None, 3),
        ("default(result, 3)", 0, 0),
        ("first(result)", [1, 2], 1),
        ("first(result)", [], None),
        ("first(nil)", None, None),
        ("last(result)", [1, 2], 2),
        ("last(result)", [], None),
    ],
)
def test_functions(source: str, result: Any, expected: Any) -> None:
    got = value(source, result)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("source", "result", "message"),
    [
        ("len(result)", None, "len() expects an array, a string or a map, got nil"),
        ("len(5)", None, "got int (5)"),
        ("all(result, # > 0)", None, "all() expects an array, got nil (the query returned no data)"),
        ("map(5, #)", None, "map() expects an array, got int (5)"),
        ("all(result, #)", [1], "predicate of all() must be a bool, got int (1)"),
        ("abs('x')", None, "abs() expects a number, got string ('x')"),
        ("asInt('1.5')", None, "asInt(): cannot parse '1.5' as an integer"),
        ("asInt(true)", None, "asInt() not supported on bool (true)"),
        ("asFloat('abc')", None, "asFloat(): cannot parse 'abc' as a number"),
        ("asFloat(' 1')", None, "cannot parse ' 1'"),
        ("asFloat(nil)", None, "asFloat() not supported on nil"),
        ("int('x')", None, "int(): cannot parse 'x'"),
        ("int(1 / 0)", None, "cannot convert +Inf to an integer"),
        ("float([1])", None, "float() expects a number"),
        ("isNaN('x')", None, "isNaN() expects a number"),
        ("isInf(nil)", None, "isInf() expects a number, got nil"),
        ("max('a')", None, "max() expects numbers or arrays of numbers"),
        ("first(3)", None, "first() expects an array"),
        ("count([1])", None, "element of count() must be a bool"),
    ],
)
def test_function_errors(source: str, result: Any, message: str) -> None:
    with pytest.raises(ConditionEvalError) as info:
        value(source, result)
    assert message in str(info.value)


def test_foreign_numeric_types_are_numbers() -> None:
    from decimal import Decimal
    from fractions import Fraction

    assert evaluate_condition("result[0] < 1", [Decimal("0.5")]) is True
    assert evaluate_condition("result == 1", Fraction(1, 1)) is True


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "source",
    [
        "result.__class__",
        "result.__class__.__mro__",
        "result['__class__']",
        "result.keys",
    ],
)
def test_no_python_attributes_on_lists(source: str) -> None:
    with pytest.raises(ConditionEvalError):
        value(source, [1, 2])


def test_no_python_attributes_on_maps_or_strings() -> None:
    # Only keys are read from a map: a Python attribute name is just a missing key.
    assert value("result.__class__", {"a": 1}) is None
    assert value("result.items", {"a": 1}) is None
    assert value("result.__class__", {"__class__": "data"}) == "data"
    with pytest.raises(ConditionEvalError):
        value("'abc'.upper", None)
    with pytest.raises(ConditionEvalError):
        value("result.__len__", "abc")


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ('"".join(result)', 3),
        ("result.keys()", 7),
        ("result.__class__()", 7),
    ],
)
def test_method_calls_are_syntax_errors(source: str, column: int) -> None:
    err = syntax_error(source)
    assert err.position == column
    assert "method calls are not supported" in str(err)


@pytest.mark.parametrize(
    "source",
    [
        "__import__('os')",
        "eval('1')",
        "exec('x')",
        "getattr(result, 'x')",
        "open('/etc/passwd')",
        "type(result)",
    ],
)
def test_python_builtins_are_unknown_functions(source: str) -> None:
    assert "unknown function" in str(syntax_error(source))


def test_source_length_is_limited() -> None:
    ok = "1 + " * 10 + "1"
    assert value(ok) == 11
    err = syntax_error("1" + " " * MAX_SOURCE_LENGTH)
    assert "expression is too long" in str(err)


def test_nesting_is_limited_with_a_clear_error() -> None:
    err = syntax_error("(" * 200 + "1" + ")" * 200)
    assert "nested too deeply" in str(err)
    err = syntax_error("1" + " + 1" * 500)
    assert "nested too deeply" in str(err)
    err = syntax_error("2 ** " * 100 + "2")
    assert "nested too deeply" in str(err)
    assert value("(((((1)))))") == 1


def test_regex_length_is_limited() -> None:
    pattern = "a" * 600
    assert "regular expression is too long" in str(syntax_error(f"'a' matches '{pattern}'"))
    with pytest.raises(ConditionEvalError, match="regular expression is too long"):
        value("'a' matches result", pattern)


def test_expensive_evaluation_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    import analysis.expr.interpreter as interpreter

    monkeypatch.setattr(interpreter, "MAX_STEPS", 10_000)  # the real cap works the same, only slower
    data = list(range(50))
    with pytest.raises(ConditionEvalError, match="evaluation stopped"):
        compile_condition("all(result, all(result, all(result, # >= 0)))").evaluate({"result": data})


# --------------------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("source", "position", "detail"),
    [
        ("result[0] >= )", 13, 'unexpected token ")"'),
        ("result[0] >=", 12, "unexpected end of expression"),
        ("(result[0] > 1", 14, 'expected ")" but found end of expression'),
        ("result[0 > 1", 12, 'expected "]" but found end of expression'),
        ("result > 1 1", 11, "unexpected number 1"),
        ("result @ 1", 7, "unexpected character '@'"),
        ("'abc", 0, "unterminated string literal"),
        ("result == 'a\\qb'", 12, "invalid escape sequence \\q"),
        ("1e+", 1, "invalid exponent"),
        ("12abc", 0, "invalid number literal"),
        ("foo > 1", 0, 'unknown name "foo"'),
        ("len > 1", 0, 'unknown name "len" (did you mean len(...)?)'),
        ("sqrt(result)", 0, 'unknown function "sqrt"'),
        ("len(result, 1) > 0", 0, "len() takes 1 argument, got 2"),
        ("all(result) ", 0, "all() takes 2 arguments, got 1"),
        ("count() > 0", 0, "count() takes 1 or 2 arguments, got 0"),
        ("max() > 0", 0, "max() takes at least 1 argument, got 0"),
        ("# > 1", 0, '"#" can only be used inside a predicate'),
        ("result.1", 7, "expected a field name"),
        ("result ?? 0 > 1", 12, 'operator ">" and "??" cannot be mixed'),
        ("true ? 1", 8, 'expected ":" but found end of expression'),
        ("a not b", 0, 'unknown name "a"'),
        ("result not 1", 7, 'unexpected token "not"'),
        ("result matches '['", 15, "invalid regular expression"),
        ("/* open", 0, "unterminated comment"),
        ("", 0, "expression is empty"),
        ("   ", 0, "expression is empty"),
    ],
)
def test_syntax_error_positions(source: str, position: int, detail: str) -> None:
    err = syntax_error(source)
    assert err.position == position
    assert detail in err.detail
    assert err.field == "successCondition"


def test_syntax_error_message_format() -> None:
    err = syntax_error("result[0] >= )")
    assert str(err) == 'successCondition: unexpected token ")" at column 14: result[0] >= )'
    multi = syntax_error("result[0] > 1 &&\n  result[1] <")
    assert multi.position == len("result[0] > 1 &&\n  result[1] <")
    assert "at line 2, column 14" in str(multi)


def test_check_syntax_is_for_linting() -> None:
    assert check_syntax("result[0] < 0.05", "successCondition") is None
    err = check_syntax("result[0] <", "failureCondition")
    assert err is not None
    assert err.position == 11
    assert str(err).startswith("failureCondition: ")
    # names other than result are declared by the caller
    assert check_syntax("result > threshold", "successCondition") is not None
    assert check_syntax("result > threshold", "successCondition", ["result", "threshold"]) is None


# --------------------------------------------------------------------------- API


def test_compiled_condition_is_reusable_and_immutable() -> None:
    cond = compile_condition("result[0] < limit", "successCondition", ["result", "limit"])
    assert cond.source == "result[0] < limit"
    assert cond.field == "successCondition"
    assert cond.evaluate({"result": [1], "limit": 2}) is True
    assert cond.evaluate({"result": [3], "limit": 2}) is False
    with pytest.raises(AttributeError):
        cond.source = "x"  # type: ignore[misc]
    with pytest.raises(ConditionEvalError, match='unknown name "limit"'):
        cond.evaluate({"result": [1]})


def test_evaluate_expression_returns_any_value() -> None:
    assert evaluate_expression("result * 2", {"result": 21}) == 42
    assert evaluate_expression("a + b", {"a": 1, "b": 2}) == 3
    assert evaluate_expression("map(xs, # + 1)", {"xs": [1, 2]}) == [2, 3]
    with pytest.raises(ConditionSyntaxError):
        evaluate_expression("c", {"a": 1})


def test_errors_are_value_errors() -> None:
    assert issubclass(ConditionSyntaxError, ValueError)
    assert issubclass(ConditionEvalError, ValueError)
