"""When to load the credentials again before the server rejects them, as kubectl (client-go) does.

An exec plugin's credential is fetched again shortly before its `expirationTimestamp`; a token read
from a file (a kubeconfig's `tokenFile`, the in-cluster projected ServiceAccount token) is read again
when the file changes and at least once a minute. The decision is pure (:func:`refresh_due`); the
only I/O is :func:`file_stamp`, one `stat` of the token file.
"""

from __future__ import annotations

import os
from typing import NamedTuple

# client-go re-reads a token file once a minute (its cachingTokenSource).
TOKEN_FILE_PERIOD = 60.0
# Fetch a new credential when this share of its lifetime is left, but no earlier than a minute ahead.
EXPIRY_SHARE = 0.2
EXPIRY_MARGIN_MAX = 60.0


class FileStamp(NamedTuple):
    """What changes when a file is replaced or rewritten (projected tokens are swapped by symlink)."""

    inode: int
    mtime_ns: int
    size: int


def refresh_at(loaded_at: float, expires_at: float | None, token_file: str | None) -> float | None:
    """The wall-clock time after which the credentials loaded at `loaded_at` should be loaded again
    (None: never, as for a static token or client certificate)."""
    deadlines = []
    if expires_at is not None:
        margin = min(EXPIRY_MARGIN_MAX, max(0.0, expires_at - loaded_at) * EXPIRY_SHARE)
        deadlines.append(expires_at - margin)
    if token_file is not None:
        deadlines.append(loaded_at + TOKEN_FILE_PERIOD)
    return min(deadlines, default=None)


def refresh_due(
    now: float, deadline: float | None, stamp_loaded: FileStamp | None, stamp_now: FileStamp | None
) -> bool:
    """Whether to load the credentials now: their deadline passed, or the token file changed."""
    if deadline is not None and now >= deadline:
        return True
    return stamp_loaded is not None and stamp_now is not None and stamp_loaded != stamp_now


def file_stamp(path: str | None) -> FileStamp | None:
    """The token file's stamp (following symlinks); None without a file or when it cannot be read."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return FileStamp(st.st_ino, st.st_mtime_ns, st.st_size)
