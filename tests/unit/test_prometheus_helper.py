"""The pure parts of rollouts.sandbox.prometheus: the scrape config and the OpenMetrics backfill file."""

from __future__ import annotations

import math

from rollouts.sandbox.prometheus import Sample, counter_series, free_port, render_openmetrics, scrape_config


def test_scrape_config_every_second_one_job_per_path() -> None:
    config = scrape_config(["http://127.0.0.1:9100/metrics", "127.0.0.1:9200", "http://127.0.0.1:9300/stats"])
    assert config["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    jobs = {(j["job_name"], j["metrics_path"]): j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    assert jobs == {
        ("sandbox", "/metrics"): ["127.0.0.1:9100", "127.0.0.1:9200"],
        ("sandbox-1", "/stats"): ["127.0.0.1:9300"],
    }
    assert all(j["scrape_interval"] == "1s" and j["scheme"] == "http" for j in config["scrape_configs"])
    assert scrape_config([])["scrape_configs"] == []


def test_openmetrics_groups_families_orders_samples_and_ends_with_eof() -> None:
    samples = [
        Sample("http_requests_total", {"code": "200", "v": "b"}, 5, 1_700_000_010),
        Sample("latency_bucket", {"le": "+Inf"}, 1, 1_700_000_000),
        Sample("http_requests_total", {"code": "200", "v": "a"}, 3, 1_700_000_010),
        Sample("http_requests_total", {"v": "a", "code": "200"}, 1, 1_700_000_000.5),
        Sample("temperature", {}, math.nan, 1_700_000_000),
        Sample("latency_count", {}, 1, 1_700_000_000),
    ]
    text = render_openmetrics(samples, {"http_requests": "counter", "latency": "histogram"})
    assert text == (
        "# TYPE http_requests counter\n"
        'http_requests_total{code="200",v="a"} 1.0 1700000000.500\n'
        'http_requests_total{code="200",v="a"} 3.0 1700000010.000\n'
        'http_requests_total{code="200",v="b"} 5.0 1700000010.000\n'
        "# TYPE latency histogram\n"
        'latency_bucket{le="+Inf"} 1.0 1700000000.000\n'
        "latency_count 1.0 1700000000.000\n"
        "# TYPE temperature unknown\n"
        "temperature NaN 1700000000.000\n"
        "# EOF\n"
    )


def test_counter_series_grows_at_the_rate() -> None:
    series = counter_series("x_total", {"a": "1"}, 2.0, start=1000.0, end=1060.0, step=15.0)
    assert [(s.timestamp, s.value) for s in series] == [(1000, 0), (1015, 30), (1030, 60), (1045, 90), (1060, 120)]


def test_free_port_is_a_port() -> None:
    assert 0 < free_port() < 65536
