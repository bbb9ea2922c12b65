"""Metric values read from log lines, by SageMaker's MetricDefinitions rule."""
from __future__ import annotations

import pytest

from aws_sagemaker_remote.metrics import MetricTracker


def test_metric_tracker_ignores_values_that_are_not_numbers() -> None:
    tracker = MetricTracker([("loss", r"loss=(\S+)")])
    assert not tracker.feed("loss=nan-ish")
    assert tracker.feed("loss=1e-3")
    assert not tracker.feed("loss=0.001")
    assert tracker.line() == "[metrics] loss=0.001"


def test_the_whole_match_is_the_value_when_the_regex_has_no_group() -> None:
    tracker = MetricTracker([("count", r"\d+(?= items)"), ("loss", r"loss: ([0-9.]+)")])
    assert tracker.match("epoch 1: 42 items, loss: 0.5") == {"count": 42.0, "loss": 0.5}
    assert tracker.line() == "[metrics] count=42 loss=0.5"


def test_an_invalid_regex_is_a_value_error_naming_the_metric() -> None:
    # a plain ValueError: the planner turns it into a flag error, the local backend into
    # an AWS ValidationException, each in its own words
    with pytest.raises(ValueError) as info:
        MetricTracker([("loss", "loss=(")])
    assert str(info.value).startswith("metric 'loss': invalid regex 'loss=('")
