"""The judge benchmark in chunks of runs, its judge filter, and its false-rollback studies (benchmarks/judge/)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from benchmarks.judge.__main__ import judge_filter, run_cell
from benchmarks.judge.cells import CELLS
from benchmarks.judge.chunks import chunk_seeds, chunk_sizes
from benchmarks.judge.joint import LABEL
from benchmarks.judge.judges import sequential_counts
from benchmarks.judge.simulate import HISTORY_INTERVALS, ErrorCell, simulate_errors, simulate_stable_history
from benchmarks.judge.summary import OURS, summary_lines

SEED = 20240601
CELL = next(c for c in CELLS if c.name == "err null: steady 20rps, 10%, 1%")


def test_runs_split_into_chunks_of_a_thousand() -> None:
    assert chunk_sizes(10_000) == [1000] * 10
    assert chunk_sizes(2500) == [1000, 1000, 500]
    assert chunk_sizes(200) == [200]
    with pytest.raises(ValueError, match="runs"):
        chunk_sizes(0)


def test_the_first_chunk_keeps_the_one_pass_seeds_and_every_chunk_draws_its_own() -> None:
    crc = zlib.crc32(CELL.name.encode())
    first = chunk_seeds(SEED, CELL.name, 0)
    assert first.data == (SEED, crc) and first.latency == (SEED, crc, 1)
    seeds = [chunk_seeds(SEED, CELL.name, i) for i in range(12)]
    keys = [k for s in seeds for k in (s.data, s.latency)]
    draws = {float(np.random.default_rng(list(k)).random()) for k in keys}
    assert len(draws) == len(keys)


def test_a_run_in_one_chunk_is_the_one_pass_benchmark() -> None:
    spec = CELL.spec
    assert isinstance(spec, ErrorCell)
    rng = np.random.default_rng([SEED, zlib.crc32(CELL.name.encode())])
    d = simulate_errors(spec, 12, 60, rng)
    history = simulate_stable_history(spec, 12, HISTORY_INTERVALS, rng)
    want = sequential_counts(d.ce, d.cn, d.be, d.bn, history=history)
    _, alone = run_cell(CELL, 12, SEED, {}, {}, judge_filter([OURS]))
    assert list(alone) == [OURS]
    # With the sparse rule wanted too, the error-rate test's row comes from the joint trace: the same test.
    _, both = run_cell(CELL, 12, SEED, {}, {}, judge_filter([OURS, LABEL]))
    assert list(both) == [OURS, LABEL]
    for got in (alone, both):
        np.testing.assert_array_equal(got[OURS].fail_at, want.fail_at)
        np.testing.assert_array_equal(got[OURS].pass_at, want.pass_at)


def test_more_runs_extend_the_first_chunk_with_new_draws() -> None:
    wanted = judge_filter([OURS, LABEL])
    _, one = run_cell(CELL, 8, SEED, {}, {}, wanted, chunk_runs=8)
    _, three = run_cell(CELL, 20, SEED, {}, {}, wanted, chunk_runs=8)
    for judge in (OURS, LABEL):
        assert three[judge].fail_at.size == 20
        np.testing.assert_array_equal(three[judge].pass_at[:8], one[judge].pass_at)
    # The later chunks are other runs, not the first one again.
    assert not np.array_equal(three[OURS].pass_at[8:16], one[OURS].pass_at)


def test_the_filter_keeps_named_judges_and_the_families_they_belong_to() -> None:
    everything = judge_filter([])
    assert everything("Flagger threshold, 5 failed checks")
    ours = judge_filter(["ours (sequential)", "latency when sparse"])
    assert ours(OURS) and ours(LABEL) and not ours("Kayenta MW") and not ours("Argo threshold, failureLimit 2")
    tuned = judge_filter(["Kayenta MW every interval, tuned"])
    assert tuned("Kayenta MW") and not tuned(OURS)


def test_target_lines_cover_the_judges_that_ran() -> None:
    _, got = run_cell(CELL, 10, SEED, {}, {}, judge_filter([OURS, LABEL]), chunk_runs=5)
    headline = next(c for c in CELLS if c.headline)
    lines = summary_lines([CELL, headline], {CELL.name: got, headline.name: {}}, 60)
    assert [line.split(":")[2].split(" false")[0].strip() for line in lines] == ["ours", LABEL]
    assert all("/10 = " in line for line in lines)


def test_the_study_of_false_rollbacks_sees_the_factors_the_canary_errors_were_drawn_with() -> None:
    from benchmarks.judge.false_rollbacks import canary_factors

    cell = next(c for c in CELLS if "null: clustered canary-only" in c.name)
    assert isinstance(cell.spec, ErrorCell)
    key = chunk_seeds(SEED, cell.name, 0).data
    g = canary_factors(cell.spec, 50, key)
    d = simulate_errors(cell.spec, 50, 60, np.random.default_rng(list(key)))
    # About 1.2 errors a minute: the factor explains most of a minute's count (another stream would not).
    assert np.corrcoef(g.ravel(), (d.ce / d.cn).ravel())[0, 1] > 0.5


def test_the_canary_dispersion_variants_are_never_less_cautious_than_the_library() -> None:
    from analysis.stats.count_config import CountTestConfig
    from analysis.stats.negbin_guard import NB_A_GRID
    from analysis.stats.sequential_counts import CountCore
    from benchmarks.judge.canary_dispersion import upper_end, variants

    ll = np.array([[0.0, -1.0, -3.0] + [-9.0] * (len(NB_A_GRID) - 3)])
    assert upper_end(ll, np.array([-1.5]))[0] == NB_A_GRID[1]
    rng = np.random.default_rng(7)
    library = CountCore(CountTestConfig())
    cores = {name: make() for name, make in variants().items()}
    states = {name: core.zeros((200,)) for name, core in cores.items()}
    st_lib = library.zeros((200,))
    stricter = 0
    for _ in range(20):
        n, m = rng.poisson(120.0, 200).astype(float), rng.poisson(1080.0, 200).astype(float)
        c = rng.poisson(n * 0.01 * rng.gamma(1.0, 1.0, 200)).astype(float)
        e = rng.poisson(m * 0.01).astype(float)
        args = (c, c + e, n / (n + m), n + m)
        library.update(st_lib, *args)
        for name, core in cores.items():
            core.update(states[name], *args)
            a = core.canary_a(states[name])
            if name.startswith("window"):
                continue  # a longer window, not a floor: compared through the benchmark
            assert np.all(a >= library.canary_a(st_lib))
            stricter += int(np.sum(a > library.canary_a(st_lib)))
    assert stricter > 0
