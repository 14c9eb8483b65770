"""``provider.judge.source`` checked where templates are validated: which providers may feed the judge,
their fields, and the test that may use them; each problem names its field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.providers.judge.source_spec import SOURCES, series_source
from analysis.spec import validate_metrics

WHERE = "spec.metrics[0].provider.judge"


def judge(**spec: Any) -> list[dict[str, Any]]:
    block = {"test": "mann-whitney", "canary": {"query": "c"}, "baseline": {"query": "b"},
             "rangeQuery": {"start": "now() - 10m"}, **spec}
    return [{"name": "m", "count": 1, "provider": {"judge": block}}]


@pytest.mark.parametrize("source", [{"datadog": {"secretRef": {"name": "dd"}, "requestTimeout": "5s"}},
                                    {"cloudWatch": {"region": "eu-west-1", "roleArn": "arn:aws:iam::1:role/r"}},
                                    {"graphite": {"address": "http://graphite", "timeout": 3}},
                                    {"influxdb": {"profile": "metrics"}},
                                    {"wavefront": {"address": "example.wavefront.com", "timeout": 10}},
                                    {"newRelic": {"profile": "nr", "timeout": 10}},
                                    {"skywalking": {"address": "http://oap:12800"}}])
def test_each_source_with_its_connection_fields_is_valid(source: dict[str, Any]) -> None:
    assert validate_metrics(judge(source=source)) == []
    kind = next(iter(source))
    assert kind in SOURCES and series_source({"source": source}) == (kind, source[kind])


def test_no_source_reads_prometheus() -> None:
    assert series_source({"address": "http://prom"}) is None


def test_an_unknown_source_or_two_at_once_are_named() -> None:
    supported = ", ".join(SOURCES)
    assert validate_metrics(judge(source={"kayenta": {}})) == [
        f"{WHERE}.source.kayenta: not a series source (supported: {supported})"
    ]
    assert validate_metrics(judge(source={"datadog": {}, "influxdb": {}})) == [
        f"{WHERE}.source: expected an object with exactly one of {supported}"
    ]


def test_a_query_field_in_the_source_says_where_the_query_goes() -> None:
    [problem] = validate_metrics(judge(source={"graphite": {"address": "http://g", "query": "target=x"}}))
    assert problem.startswith(f"{WHERE}.source.graphite.query: unknown field (known: address, timeout; "
                              "the query goes in canary.query and baseline.query: a Graphite target")


def test_graphite_needs_its_address_and_prometheus_fields_do_not_mix_with_a_source() -> None:
    assert validate_metrics(judge(source={"graphite": {}}, address="http://prom")) == [
        f"{WHERE}.source.graphite.address: required",
        f"{WHERE}.address: a Prometheus setting, unused when the series come from source.graphite: remove it",
    ]


def test_wavefront_and_skywalking_need_their_address() -> None:
    assert validate_metrics(judge(source={"wavefront": {}})) == [f"{WHERE}.source.wavefront.address: required"]
    assert validate_metrics(judge(source={"skywalking": {}})) == [f"{WHERE}.source.skywalking.address: required"]


def test_nrql_queries_leave_the_window_to_the_judge() -> None:
    spec = judge(source={"newRelic": {}})
    spec[0]["provider"]["judge"]["baseline"] = {"query": "SELECT average(duration) FROM Transaction since 1 hour ago"}
    assert validate_metrics(spec) == [
        f"{WHERE}.baseline.query: SINCE: the judge appends SINCE, UNTIL and TIMESERIES from its window and "
        "rangeQuery.step: remove it from the query"
    ]


def test_the_sequential_tests_keep_prometheus() -> None:
    metric = [{"name": "m", "interval": "1m", "provider": {"judge": {
        "source": {"datadog": {}}, "canary": {"errors": "e", "requests": "r"},
        "baseline": {"errors": "e", "requests": "r"}}}}]
    assert validate_metrics(metric) == [
        f"{WHERE}.source: only test: mann-whitney reads another provider's series (the sequential tests read "
        "Prometheus counters): remove source or set test: mann-whitney"
    ]


def test_timeouts_are_checked_as_their_providers_write_them() -> None:
    assert validate_metrics(judge(source={"datadog": {"requestTimeout": "soon"}})) == [
        f'{WHERE}.source.datadog.requestTimeout: Invalid value: "soon": not a duration: use a Go duration such as '
        "30s, 5m or 1h"
    ]
    assert validate_metrics(judge(source={"influxdb": {"timeout": 0}})) == [
        f"{WHERE}.source.influxdb.timeout: expected a number of seconds above 0, got 0"
    ]
    assert validate_metrics(judge(source={"cloudWatch": {"timeout": "{{args.t}}"}}, **{})) == []
