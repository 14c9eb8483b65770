"""The status the analysis controller writes on an AnalysisTemplate: condition Invalid (issue 4)."""

from __future__ import annotations

import datetime as dt

from rollouts.controller.analysisruns import template_status

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(minutes=5)
PROBLEM = "spec.metrics[0].successCondition: unexpected ')' at column 14"


def test_invalid_then_unchanged_then_fixed() -> None:
    first = template_status({}, [PROBLEM, "spec.args[1].name: duplicate"], 1, T0)
    assert first == {"observedGeneration": 1, "conditions": [{
        "type": "Invalid", "status": "True", "reason": "InvalidSpec",
        "message": PROBLEM + "; spec.args[1].name: duplicate", "lastTransitionTime": "2024-05-01T12:00:00Z"}]}
    assert template_status(first, [PROBLEM, "spec.args[1].name: duplicate"], 1, T1) is None  # no write loop
    other = template_status(first, [PROBLEM], 2, T1)  # still invalid: the transition time stays
    assert other is not None
    assert other["conditions"][0]["lastTransitionTime"] == "2024-05-01T12:00:00Z"
    assert other["conditions"][0]["message"] == PROBLEM and other["observedGeneration"] == 2
    fixed = template_status(other, [], 3, T1)
    assert fixed == {"observedGeneration": 3, "conditions": [{
        "type": "Invalid", "status": "False", "reason": "Valid", "message": "",
        "lastTransitionTime": "2024-05-01T12:05:00Z"}]}


def test_new_generation_alone_is_written_and_other_conditions_kept() -> None:
    valid = template_status({}, [], 1, T0)
    assert valid is not None
    mine = valid["conditions"][0]
    status = {"observedGeneration": 1, "conditions": [{"type": "Other", "status": "True"}, mine]}
    assert template_status(status, [], 1, T1) is None
    again = template_status(status, [], 2, T1)
    assert again == {"observedGeneration": 2, "conditions": [{"type": "Other", "status": "True"}, mine]}
