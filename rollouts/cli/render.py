"""Pure: RolloutInfo -> the text `get rollout`, `status` and `list rollouts` print.

The layout is `kubectl argo rollouts`' (`cmd/get/get_rollout.go`, `cmd/list/rolloutinfo.go`): a header
in 17-character label columns, a blank line, then the tree in columns aligned the way Go's tabwriter
aligns them (each column as wide as its widest cell plus two spaces). Trailing spaces are trimmed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rollouts.cli import info as i
from rollouts.cli.score_info import ScoreInfo, ScoreMetricInfo
from rollouts.model.durations import human_duration
from rollouts.model.phase import rollout_phase
from rollouts.model.spec import RolloutSpec
from rollouts.model.steps import current_set_weight, step_text
from rollouts.model.timestamps import format_time, parse_datetime

if TYPE_CHECKING:
    from rollouts.cli.analysisrun_info import AnalysisRunDetail

ICON_ROLLOUT = "⟳"
ICON_REVISION = "#"
ICON_REPLICASET = "⧉"
ICON_POD = "□"
ICON_JOB = "⊞"
ICON_ANALYSIS = "α"  # noqa: RUF001 (Argo's icon)
ICON_EXPERIMENT = "Σ"  # Argo's icon

CLEAR_SCREEN = "\033[H\033[2J\033[0;0H"

_FG_RED, _FG_GREEN, _FG_YELLOW, _FG_HIBLUE = 31, 32, 33, 94
_COLORS = {
    i.ICON_WAITING: _FG_YELLOW,
    i.ICON_PROGRESSING: _FG_HIBLUE,
    i.ICON_WARNING: _FG_RED,
    i.ICON_UNKNOWN: _FG_YELLOW,
    i.ICON_OK: _FG_GREEN,
    i.ICON_BAD: _FG_RED,
    i.TAG_CANARY: _FG_YELLOW,
    i.TAG_STABLE: _FG_GREEN,
    i.TAG_ACTIVE: _FG_GREEN,
    i.TAG_PREVIEW: _FG_HIBLUE,
    i.TAG_PING: _FG_HIBLUE,
    i.TAG_PONG: _FG_HIBLUE,
    "Pending": _FG_HIBLUE,
    "Running": _FG_HIBLUE,
}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, key: str | None = None) -> str:
        code = _COLORS.get(text if key is None else key)
        if not self.color or code is None:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"


def visible_width(text: str) -> int:
    return len(_ANSI.sub("", text))


def tabulate(rows: Sequence[Sequence[str]], padding: int = 2) -> list[str]:
    """Go tabwriter (padding 2, pad with spaces) for rows whose last cell is not tab-terminated."""
    widths: dict[int, int] = {}
    for row in rows:
        for col, cell in enumerate(row[:-1]):
            widths[col] = max(widths.get(col, 0), visible_width(cell))
    lines = []
    for row in rows:
        parts = [cell + " " * (widths[col] + padding - visible_width(cell)) for col, cell in enumerate(row[:-1])]
        lines.append(("".join(parts) + (row[-1] if row else "")).rstrip(" "))
    return lines


def age(created: dt.datetime | None, now: dt.datetime) -> str:
    if created is None:
        return ""
    return human_duration((now - created).total_seconds())


def _prefixes(is_last: bool, sub_prefix: str) -> tuple[str, str]:
    if is_last:
        return sub_prefix + "└──", sub_prefix + "   "
    return sub_prefix + "├──", sub_prefix + "│  "


def _label(label: str, value: object) -> str:
    # a label longer than the column (a plugin router's name) still gets a space before its value
    return f"{label:<16} {value}".rstrip(" ")


def render_header(ro: i.RolloutInfo, color: bool = False) -> list[str]:
    paint = _Painter(color)
    lines = [
        _label("Name:", ro.name),
        _label("Namespace:", ro.namespace),
        _label("Status:", f"{paint(ro.icon)} {ro.status}"),
    ]
    if ro.message:
        lines.append(_label("Message:", ro.message))
    lines.append(_label("Strategy:", ro.strategy))
    if ro.strategy == "Canary":
        lines.append(_label("  Step:", ro.step))
        lines.append(_label("  SetWeight:", ro.set_weight))
        lines.append(_label("  ActualWeight:", ro.actual_weight))
        for router in ro.routers:
            weights = f"SetWeight {router.set_weight}, ActualWeight {router.actual_weight}"
            lines.append(_label(f"  {router.name}:", weights))
            if router.message:
                lines.append(_label("", router.message))
    for n, image in enumerate(i.images(ro)):
        text = image.image
        if image.tags:
            text += " (" + ", ".join(paint(tag) for tag in image.tags) + ")"
        lines.append(_label("Images:" if n == 0 else "", text))
    lines.append("Replicas:")
    lines.append(_label("  Desired:", ro.desired))
    lines.append(_label("  Current:", ro.current))
    lines.append(_label("  Updated:", ro.updated))
    lines.append(_label("  Ready:", ro.ready))
    lines.append(_label("  Available:", ro.available))
    return lines


def scale_down_delay(deadline: str, now: dt.datetime) -> str:
    when = parse_datetime(deadline)
    if when is None:
        return ""
    if when < now:
        return "passed"
    return human_duration((when - now).total_seconds())


def _replicaset_rows(
    rs: i.ReplicaSetInfo, prefix: str, sub_prefix: str, now: dt.datetime, paint: _Painter
) -> list[list[str]]:
    info_cols: list[str] = []
    name = rs.name
    for tag, on in ((i.TAG_STABLE, rs.stable),):
        if on:
            info_cols.append(paint(tag))
            name = paint(name, tag)
    if rs.canary:
        info_cols.append(paint(i.TAG_CANARY))
        name = paint(name, i.TAG_CANARY)
    elif rs.active:
        info_cols.append(paint(i.TAG_ACTIVE))
        name = paint(name, i.TAG_ACTIVE)
    elif rs.preview:
        info_cols.append(paint(i.TAG_PREVIEW))
        name = paint(name, i.TAG_PREVIEW)
    for tag, on in ((i.TAG_PING, rs.ping), (i.TAG_PONG, rs.pong)):
        if on:
            info_cols.append(paint(tag))
            name = paint(name, tag)
    if rs.scale_down_deadline:
        info_cols.append(f"delay:{scale_down_delay(rs.scale_down_deadline, now)}")
    rows = [
        [
            f"{prefix}{ICON_REPLICASET} {name}",
            "ReplicaSet",
            f"{paint(rs.icon)} {rs.status}",
            age(rs.created, now),
            ",".join(info_cols),
        ]
    ]
    for n, pod in enumerate(rs.pods):
        pod_prefix, _ = _prefixes(n == len(rs.pods) - 1, sub_prefix)
        pod_cols = [f"ready:{pod.ready}"]
        if pod.restarts > 0:
            pod_cols.append(f"restarts:{pod.restarts}")
        rows.append(
            [
                f"{pod_prefix}{ICON_POD} {pod.name}",
                "Pod",
                f"{paint(pod.icon)} {pod.status}",
                age(pod.created, now),
                ",".join(pod_cols),
            ]
        )
    return rows


def _analysisrun_rows(
    run: i.AnalysisRunInfo, prefix: str, sub_prefix: str, now: dt.datetime, paint: _Painter
) -> list[list[str]]:
    rows = [
        [
            f"{prefix}{ICON_EXPERIMENT if run.kind == 'Experiment' else ICON_ANALYSIS} {paint(run.name, run.status)}",
            run.kind,
            f"{paint(run.icon)} {run.status}",
            age(run.created, now),
            counts_text(run.successful, run.failed, run.inconclusive, run.error, paint),
        ]
    ]
    for n, job in enumerate(run.jobs):
        job_prefix, _ = _prefixes(n == len(run.jobs) - 1, sub_prefix)
        rows.append(
            [
                f"{job_prefix}{ICON_JOB} {paint(job.name, job.status)}",
                "Job",
                f"{paint(job.icon)} {job.status}",
                age(job.created, now),
                "",
            ]
        )
    return rows


def render_tree(ro: i.RolloutInfo, now: dt.datetime, color: bool = False) -> list[str]:
    paint = _Painter(color)
    rows: list[list[str]] = [
        ["NAME", "KIND", "STATUS", "AGE", "INFO"],
        [f"{ICON_ROLLOUT} {ro.name}", "Rollout", f"{paint(ro.icon)} {ro.status}", age(ro.created, now), ""],
    ]
    revs = i.revisions(ro)
    for n, revision in enumerate(revs):
        prefix, sub_prefix = _prefixes(n == len(revs) - 1, "")
        rows.append([f"{prefix}{ICON_REVISION} revision:{revision}", "", " ", "", ""])
        children: list[i.ReplicaSetInfo | i.AnalysisRunInfo] = [
            *(rs for rs in ro.replicasets if rs.revision == revision),
            *(run for run in ro.analysisruns if run.revision == revision),
        ]
        for c, child in enumerate(children):
            child_prefix, child_sub = _prefixes(c == len(children) - 1, sub_prefix)
            if isinstance(child, i.ReplicaSetInfo):
                rows.extend(_replicaset_rows(child, child_prefix, child_sub, now, paint))
            else:
                rows.extend(_analysisrun_rows(child, child_prefix, child_sub, now, paint))
    return tabulate(rows)


def render_rollout(ro: i.RolloutInfo, now: dt.datetime, color: bool = False) -> str:
    """The whole `get rollout` output: header, blank line, tree, then the last verdict of each judge metric
    in the current analysis; ends with a newline."""
    lines = [*render_header(ro, color), "", *render_tree(ro, now, color)]
    for found in ro.judges:
        lines += ["", *judge_lines(f"{found.run}/{found.metric}", found.judge)]
    return "\n".join(lines) + "\n"


def status_line(phase: str, message: str) -> str:
    """`status` prints "Healthy"/"Degraded" alone and "Phase - message" otherwise (watch: always with message)."""
    return f"{phase} - {message}" if message else phase


# --------------------------------------------------------------------------- get analysisrun


def counts_text(successful: int, failed: int, inconclusive: int, error: int, paint: _Painter | None = None) -> str:
    """Argo's INFO column for analysis: `✔ 3,✖ 1` (zero counts left out)."""
    paint = paint or _Painter(False)
    return ",".join(
        f"{paint(icon)} {count}"
        for icon, count in (
            (i.ICON_OK, successful),
            (i.ICON_BAD, failed),
            (i.ICON_UNKNOWN, inconclusive),
            (i.ICON_WARNING, error),
        )
        if count > 0
    )


def _without_empty_last_column(rows: list[list[str]]) -> list[list[str]]:
    """Leave out a trailing column (MESSAGE) that no row fills."""
    if any(row[-1] for row in rows[1:]):
        return rows
    return [row[:-1] for row in rows]


def render_analysisrun(run: AnalysisRunDetail, now: dt.datetime, color: bool = False) -> str:
    """`get analysisrun`: a header, the metrics (phase, measurements taken / count, counts, message),
    then each metric's last measurements (phase, value, age, message). Ends with a newline."""
    paint = _Painter(color)
    lines = [
        _label("Name:", run.name),
        _label("Namespace:", run.namespace),
        _label("Status:", f"{paint(run.icon)} {run.status}"),
    ]
    if run.message:
        lines.append(_label("Message:", run.message))
    if run.terminating:
        lines.append(_label("Terminate:", "requested"))
    for n, arg in enumerate(run.args):
        lines.append(_label("Args:" if n == 0 else "", arg))
    metric_rows = [["METRIC", "STATUS", "COUNT", "INFO", "MESSAGE"]]
    measurement_rows = [["METRIC", "STATUS", "VALUE", "AGE", "MESSAGE"]]
    for metric in run.metrics:
        info_cols = [counts_text(metric.successful, metric.failed, metric.inconclusive, metric.error, paint)]
        if metric.dry_run:
            info_cols.append("dry-run")
        count = f"{metric.measured}/{metric.count}" if metric.count else str(metric.measured)
        metric_rows.append([
            metric.name, f"{paint(metric.icon)} {metric.status}", count, " ".join(c for c in info_cols if c),
            metric.message,
        ])
        for measurement in metric.measurements:
            measurement_rows.append([
                metric.name,
                f"{paint(measurement.icon)} {measurement.status}",
                measurement.value,
                age(measurement.finished or measurement.started, now),
                measurement.message,
            ])
    lines += ["", *tabulate(_without_empty_last_column(metric_rows))]
    if len(measurement_rows) > 1:
        measurement_rows = _without_empty_last_column(measurement_rows)
        lines += ["", f"Last measurements (up to {run.last} per metric):", *tabulate(measurement_rows)]
    for metric in run.metrics:
        if metric.judge is not None:
            lines += ["", *judge_lines(metric.name, metric.judge)]
    return "\n".join(lines) + "\n"


def judge_lines(name: str, judge: i.JudgeInfo) -> list[str]:
    """Why a `judge` metric decided (or has not yet): decision, estimate and interval, evidence, sample sizes;
    a score as a score, with a line per metric."""
    if judge.score is not None:
        return _score_lines(name, judge, judge.score)
    lines = [f"Judge {name}: {judge.decision}"]
    if judge.estimate:
        estimate = " ".join(part for part in (judge.estimate, judge.interval) if part)
        lines.append(_label("  Estimate:", f"{estimate} ({judge.quantity})" if judge.quantity else estimate))
    if judge.evidence:
        lines.append(_label("  Evidence:", judge.evidence))
    if judge.samples:
        lines.append(_label("  Sample:", judge.samples))
    lines.append(_label("  Reason:", judge.reason))
    return lines


def _score_metric_line(m: ScoreMetricInfo) -> str:
    """``errors [errors, critical]: Pass 1.02 [0.85, 1.3]; <reason>`` (a reason of its own, or what it needs)."""
    tags = ", ".join([*m.groups, *(["critical"] if m.critical else [])])
    figures = " ".join(part for part in (m.decision, m.estimate, m.interval) if part)
    why = m.needed or m.reason
    return f"    {m.name} [{tags}]: {figures}{'; ' + why if why else ''}"


def _score_lines(name: str, judge: i.JudgeInfo, score: ScoreInfo) -> list[str]:
    """A score: its value against the thresholds, final or not, the groups, the reason, then its metrics."""
    thresholds = ", ".join(f"{label} {value}" for label, value in (("pass", score.pass_threshold),
                                                                    ("marginal", score.marginal_threshold)) if value)
    value = score.score or "none"
    if thresholds:
        value += f" ({thresholds})"
    value += ", final" if score.final else ", not final"
    lines = [f"Judge {name}: {judge.decision}", _label("  Score:", value)]
    if score.groups:
        lines.append(_label("  Groups:", score.groups))
    if score.outcome:
        lines.append(_label("  Outcome:", score.outcome))
    lines.append(_label("  Reason:", judge.reason))
    if score.metrics:
        lines.append("  Metrics:")
        lines.extend(_score_metric_line(m) for m in score.metrics)
    return lines


# --------------------------------------------------------------------------- list rollouts

LIST_HEADER = ["NAME", "STRATEGY", "STATUS", "STEP", "SET-WEIGHT", "READY", "DESIRED", "UP-TO-DATE", "AVAILABLE"]
_LIST_WIDTHS = [10, 9, 12, 4, 10, 5, 7, 10, 9]


def list_row(ro: Mapping[str, Any]) -> list[str]:
    """One `list rollouts` line's cells, padded as Argo's column format pads them."""
    status = i.status_of(ro)
    view = RolloutSpec.parse(ro)
    strategy, step, weight = "unknown", "-", "-"
    if view.canary is not None:
        strategy = "Canary"
        step = step_text(view, status) or "-"
        weight = str(current_set_weight(view, status))
    elif i.bluegreen_of(ro) is not None:
        strategy = "BlueGreen"
    phase, _ = rollout_phase(ro)
    values = [
        str(i.meta(ro).get("name", "")),
        strategy,
        phase,
        step,
        weight,
        f"{i.as_int(status.get('readyReplicas'))}/{i.as_int(status.get('replicas'))}",
        str(view.replicas),
        str(i.as_int(status.get("updatedReplicas"))),
        str(i.as_int(status.get("availableReplicas"))),
    ]
    return [value.ljust(width) for value, width in zip(values, _LIST_WIDTHS, strict=True)]


def list_key(ro: Mapping[str, Any]) -> tuple[str, str]:
    return str(i.meta(ro).get("namespace", "")), str(i.meta(ro).get("name", ""))


def _timestamp(moment: dt.datetime | None) -> str:
    return format_time(moment or dt.datetime.now(dt.UTC))


def _full_row(ro: Mapping[str, Any], all_namespaces: bool, timestamps: bool, now: dt.datetime | None) -> list[str]:
    row = list_row(ro)
    if all_namespaces:
        row.insert(0, str(i.meta(ro).get("namespace", "")).ljust(9))
    if timestamps:
        row.insert(0, _timestamp(now).ljust(20))
    return row


def _header(all_namespaces: bool, timestamps: bool) -> list[str]:
    header = list(LIST_HEADER)
    if all_namespaces:
        header.insert(0, "NAMESPACE")
    if timestamps:
        header.insert(0, "TIMESTAMP")
    return header


def render_list(
    rollouts: Sequence[Mapping[str, Any]],
    all_namespaces: bool = False,
    timestamps: bool = False,
    now: dt.datetime | None = None,
) -> str:
    """The `list rollouts` table (NAMESPACE with -A, TIMESTAMP with --timestamps, as Argo)."""
    rows = [_full_row(ro, all_namespaces, timestamps, now) for ro in rollouts]
    return "\n".join(tabulate([_header(all_namespaces, timestamps), *rows])) + "\n"


def render_list_line(
    ro: Mapping[str, Any], all_namespaces: bool = False, timestamps: bool = False, now: dt.datetime | None = None
) -> str:
    """One updated line under the table `list rollouts --watch` printed first (aligned with its header)."""
    lines = tabulate([_header(all_namespaces, timestamps), _full_row(ro, all_namespaces, timestamps, now)])
    return lines[1]
