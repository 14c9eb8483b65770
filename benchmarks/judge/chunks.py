"""Runs of a cell in chunks: the sizes and each chunk's seeds.

A cell of many runs is simulated ``CHUNK_RUNS`` at a time so that memory stays that of one chunk (a day of
stable history is 1,440 intervals per run). The first chunk keeps the seeds the benchmark has always used,
so the first 1,000 runs of a long run are the 1,000-run table's runs.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

CHUNK_RUNS = 1000

# Streams past the first chunk. numpy's SeedSequence pads its entropy with zeros, so a key ending in 0
# could repeat a shorter key: every later key ends in the chunk's index (>= 1) behind a stream tag that
# no first-chunk key has in that position.
_DATA, _LATENCY = 2, 3


@dataclass(frozen=True)
class ChunkSeeds:
    data: tuple[int, ...]  # the simulated traffic, errors, histograms and stable history
    latency: tuple[int, ...]  # latency histograms drawn for an error cell's traffic ("latency when sparse")


def chunk_sizes(runs: int, size: int = CHUNK_RUNS) -> list[int]:
    """``runs`` split into chunks of ``size`` (the last one shorter)."""
    if runs <= 0 or size <= 0:
        raise ValueError(f"runs ({runs}) and chunk size ({size}) must be positive")
    return [min(size, runs - start) for start in range(0, runs, size)]


def chunk_seeds(seed: int, cell_name: str, chunk: int) -> ChunkSeeds:
    """The generator keys of one chunk of a cell: the cell's name and the chunk's index pick them."""
    cell = zlib.crc32(cell_name.encode())
    if chunk == 0:
        return ChunkSeeds((seed, cell), (seed, cell, 1))
    return ChunkSeeds((seed, cell, _DATA, chunk), (seed, cell, _LATENCY, chunk))
