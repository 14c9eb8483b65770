"""py-spy around a benchmark's phase: sample a running process, then say where its time went.

``profiled(pid, path)`` runs ``py-spy record --pid PID --format raw`` (collapsed stacks, one
``frame;frame;... count`` line per stack) while the block runs; ``top_frames(path)`` ranks the frames by
the share of samples they were on the stack (inclusive) and on its top (self). py-spy is a tool, not a
dependency: ``pip install py-spy``; it needs to be allowed to ptrace the process.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAMPLES_PER_SECOND = 100


@contextmanager
def profiled(pid: int, path: Path) -> Iterator[None]:
    binary = shutil.which("py-spy")
    if binary is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    spy = subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--format", "raw", "--output", str(path),
         "--rate", str(SAMPLES_PER_SECOND), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(timeout=60)


def top_frames(path: Path, count: int = 15) -> tuple[int, list[tuple[str, float, float]]]:
    """The samples taken, and the `count` frames most often on the stack: (frame, inclusive share, self share)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        n = int(samples)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    ranked = sorted(inclusive, key=lambda f: (-own[f], -inclusive[f]))[:count]
    return total, [(f, inclusive[f] / max(total, 1), own[f] / max(total, 1)) for f in ranked]


def report(path: Path, count: int = 15) -> None:
    total, frames = top_frames(path, count)
    print(f"profile: {total} samples at {SAMPLES_PER_SECOND}/s ({path}); top frames by self time:")
    for frame, inclusive, own in frames:
        print(f"  self {own:6.1%}  total {inclusive:6.1%}  {frame}")
