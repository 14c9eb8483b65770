"""The suite's file order under `--dist loadfile` (tests/fixtures/ordering.py): longest files first."""

from __future__ import annotations

from tests.fixtures.ordering import file_order


def ordered(tests: list[tuple[str, set[str]]]) -> list[str]:
    return [tests[i][0] for i in file_order(tests)]


def test_image_then_slow_then_scenarios_then_sandbox_then_unit() -> None:
    tests = [
        ("tests/unit/test_a.py::test_1", set()),
        ("tests/sandbox/test_b.py::test_1", set()),
        ("tests/scenarios/test_c.py::test_1", set()),
        ("tests/scenarios/test_crash.py::test_1", {"slow", "kubectl"}),
        ("tests/image/test_image.py::test_1", {"image", "slow"}),
    ]
    assert ordered(tests) == [
        "tests/image/test_image.py::test_1",
        "tests/scenarios/test_crash.py::test_1",
        "tests/scenarios/test_c.py::test_1",
        "tests/sandbox/test_b.py::test_1",
        "tests/unit/test_a.py::test_1",
    ]


def test_a_file_moves_whole_by_its_slowest_mark_and_keeps_its_tests_in_order() -> None:
    tests = [
        ("tests/unit/test_fast.py::test_1", set()),
        ("tests/unit/test_stats.py::test_quick", set()),
        ("tests/unit/test_stats.py::test_power", {"slow"}),
        ("tests/unit/test_stats.py::test_last", set()),
        ("tests/scenarios/test_x.py::test_1", set()),
    ]
    assert ordered(tests) == [
        "tests/unit/test_stats.py::test_quick",
        "tests/unit/test_stats.py::test_power",
        "tests/unit/test_stats.py::test_last",
        "tests/scenarios/test_x.py::test_1",
        "tests/unit/test_fast.py::test_1",
    ]


def test_files_of_one_rank_keep_their_collection_order() -> None:
    tests: list[tuple[str, set[str]]] = [(f"tests/scenarios/test_{name}.py::test_1", set()) for name in "bac"]
    assert ordered(tests) == [nodeid for nodeid, _ in tests]
