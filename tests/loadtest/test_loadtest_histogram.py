"""The histogram: percentiles within the stated relative error, and exact merging."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kms_actors.loadtest import RELATIVE_ERROR, Histogram
from kms_actors.loadtest._histogram import bounds_of, bucket_of

values = st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300)
percentiles = st.floats(min_value=0.0, max_value=100.0)


def exact(sorted_values: list[int], percentile: float) -> int:
    """Nearest-rank percentile, the definition the histogram approximates."""
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def histogram_of(recorded: list[int]) -> Histogram:
    histogram = Histogram()
    for value in recorded:
        histogram.record(value)
    return histogram


@given(values, percentiles)
@settings(max_examples=300, deadline=None)
def test_percentile_is_within_relative_error(recorded: list[int], percentile: float) -> None:
    histogram = histogram_of(recorded)
    truth = exact(sorted(recorded), percentile)
    assert abs(histogram.value_at(percentile) - truth) <= truth * RELATIVE_ERROR


@given(values)
def test_extremes_count_and_mean_are_exact(recorded: list[int]) -> None:
    histogram = histogram_of(recorded)
    assert (histogram.min, histogram.max, histogram.count) == (
        min(recorded),
        max(recorded),
        len(recorded),
    )
    assert histogram.value_at(100) == max(recorded)
    assert histogram.mean == pytest.approx(sum(recorded) / len(recorded))


@given(st.lists(values, min_size=1, max_size=5))
def test_merging_equals_recording_everything_in_one(parts: list[list[int]]) -> None:
    merged = Histogram()
    for part in parts:
        merged.merge(histogram_of(part))
    assert merged.to_data() == histogram_of([v for part in parts for v in part]).to_data()


@given(values)
def test_serialized_form_round_trips(recorded: list[int]) -> None:
    data = histogram_of(recorded).to_data()
    assert Histogram.from_data(data).to_data() == data


@given(st.integers(min_value=0, max_value=2**62))
def test_every_value_falls_in_its_bucket(value: int) -> None:
    low, high = bounds_of(bucket_of(value))
    assert low <= value < high
    assert high - low <= max(1.0, low * 2 * RELATIVE_ERROR)


def test_empty_histogram_answers_zero() -> None:
    histogram = Histogram()
    assert histogram.value_at(99) == 0
    assert histogram.mean == 0.0
    histogram.merge(Histogram())
    assert histogram.count == 0
