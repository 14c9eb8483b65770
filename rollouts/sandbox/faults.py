"""Injected API faults (`pyrollouts sandbox --faults`): a share of requests answer 500, 503, 429 with
`Retry-After`, or 409, with the `Status` bodies kube-apiserver sends, and watch streams end at random.

A rate is a share of requests (0 to 1), for every verb (`0.1`) or per verb (`get=0.1,patch=0.2`, or
both: `0.05,watch=0.3`); for watches it is the chance that a stream is cut within any 5 s. The verbs are the
API server's: get, list, watch, create, update, patch,
delete, deletecollection. The draws come from one seeded generator (`--faults-seed`): the same seed and
the same requests in the same order give the same faults. `agents` limits the faults to clients whose
User-Agent starts with one of the given prefixes (the test driver's kubectl stays exact).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from rollouts.sandbox.errors import ApiError

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Only an update or a patch meets a conflict on a real server (a create meets AlreadyExists, which the
# caller's own state explains; a fault must look like something a healthy server could answer).
CONFLICT_VERBS = frozenset({"update", "patch"})
RETRY_AFTER_SECONDS = 1
# For watches the rate is the chance that a stream is cut within any WATCH_WINDOW seconds of its life
# (a stream is one long request: a share of opens would spare the few long-lived ones); at rate 1 every
# stream is cut within WATCH_CUT_AT_ONCE seconds.
WATCH_WINDOW = 5.0
WATCH_CUT_AT_ONCE = (0.2, 3.0)


class FaultSpecError(ValueError):
    """A `--faults` value that does not parse; the message names the part and the form expected."""


def parse_rates(text: str) -> dict[str, float]:
    """`0.1`, `get=0.1,patch=0.2` or `0.05,watch=0.3` as {verb: rate}; "*" holds the rate for every verb."""
    rates: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        verb, sep, value = part.rpartition("=")
        verb = verb.strip().lower() if sep else "*"
        if verb != "*" and verb not in VERBS:
            raise FaultSpecError(f"--faults: unknown verb {verb!r} in {part!r}; verbs: {', '.join(VERBS)}")
        try:
            rate = float(value)
        except ValueError as exc:
            raise FaultSpecError(f"--faults: {part!r} is not a rate; write a share from 0 to 1, e.g. 0.1") from exc
        if not 0.0 <= rate <= 1.0:
            raise FaultSpecError(f"--faults: rate {rate} in {part!r} is outside 0..1")
        rates[verb] = rate
    if not rates:
        raise FaultSpecError("--faults: no rate given; e.g. --faults 0.1 or --faults get=0.1,patch=0.2")
    return rates


def request_verb(method: str, named: bool, watch: bool) -> str:
    """The API verb of a request on a resource URL (a named object or a collection)."""
    if method == "GET":
        return "watch" if watch else ("get" if named else "list")
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return method.lower()


def server_error() -> ApiError:
    return ApiError(
        500,
        "InternalError",
        "Internal error occurred: injected fault (pyrollouts sandbox --faults)",
        {"causes": [{"message": "injected fault (pyrollouts sandbox --faults)"}]},
    )


def unavailable() -> ApiError:
    return ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")


def too_many_requests() -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
        {"retryAfterSeconds": RETRY_AFTER_SECONDS},
    )


def conflict(plural: str, group: str, name: str) -> ApiError:
    qualified = f"{plural}.{group}" if group else plural
    details: dict[str, object] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details,
    )


@dataclass
class Faults:
    """Which requests fail, drawn from one seeded generator; `injected` counts what was answered."""

    rates: dict[str, float]
    seed: int | None = None
    agents: Sequence[str] = ()
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def applies_to(self, user_agent: str) -> bool:
        return not self.agents or any(user_agent.startswith(prefix) for prefix in self.agents)

    def rate(self, verb: str) -> float:
        return self.rates.get(verb, self.rates.get("*", 0.0))

    def draw(self, verb: str, plural: str, group: str, name: str) -> ApiError | None:
        """The error this request answers, or None; a watch that is to be dropped answers None here
        (see `watch_lifetime`)."""
        if verb == "watch" or self._random.random() >= self.rate(verb):
            return None
        choices = [server_error, unavailable, too_many_requests]
        if verb in CONFLICT_VERBS and name:
            choices.append(lambda: conflict(plural, group, name))
        error = self._random.choice(choices)()
        self.injected[f"{verb} {error.code}"] += 1
        return error

    def watch_lifetime(self) -> float | None:
        """How long a new watch stream lives before it is cut (None: as long as asked); counted as
        "watch dropped" when the cut comes (`dropped`)."""
        rate = self.rate("watch")
        if rate <= 0:
            return None
        if rate >= 1:
            return self._random.uniform(*WATCH_CUT_AT_ONCE)
        return self._random.expovariate(-math.log(1 - rate) / WATCH_WINDOW)

    def dropped(self) -> None:
        self.injected["watch dropped"] += 1
