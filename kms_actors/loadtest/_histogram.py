"""A small HDR-style histogram: log-linear buckets with a bounded relative error, mergeable.

Values are non-negative integers (the harness records microseconds). Values below
``2**PRECISION`` get a bucket each, so they are exact; above that, every power of two is split
into ``2**(PRECISION - 1)`` equal buckets, so a bucket is never wider than 1/64 of its lower
bound and its midpoint is within ``RELATIVE_ERROR`` (1/128, 0.78%) of any value in it.
Two histograms merge by adding counts, which is what lets workers' results be combined
(and reports be compared) exactly as if one histogram had seen every value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Final

import msgspec

PRECISION: Final = 7
RELATIVE_ERROR: Final = 1.0 / (1 << PRECISION)
_SUB: Final = 1 << PRECISION
_HALF: Final = _SUB >> 1


def bucket_of(value: int) -> int:
    """Return the index of the bucket holding ``value`` (>= 0)."""
    if value < _SUB:
        return value
    shift = value.bit_length() - PRECISION
    return _SUB + (shift - 1) * _HALF + ((value >> shift) - _HALF)


def bounds_of(index: int) -> tuple[int, int]:
    """Return the half-open value range ``[low, high)`` of bucket ``index``."""
    if index < _SUB:
        return index, index + 1
    shift, offset = divmod(index - _SUB, _HALF)
    top = offset + _HALF
    return top << (shift + 1), (top + 1) << (shift + 1)


class HistogramData(msgspec.Struct, frozen=True, kw_only=True):
    """A histogram as stored in a JSON report: ``buckets`` are (lowest value, count) pairs."""

    precision: int = PRECISION
    unit: str = "us"
    count: int = 0
    min: int = 0
    max: int = 0
    total: int = 0
    buckets: list[tuple[int, int]] = msgspec.field(default_factory=list)


class Histogram:
    """Counts of values in log-linear buckets; percentiles within ``RELATIVE_ERROR``."""

    __slots__ = ("_counts", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self.count = 0
        self.min = 0
        self.max = 0
        self.total = 0

    def record(self, value: int, count: int = 1) -> None:
        """Add ``count`` occurrences of ``value`` (negative values count as 0)."""
        value = max(value, 0)
        index = bucket_of(value)
        self._counts[index] = self._counts.get(index, 0) + count
        if self.count == 0 or value < self.min:
            self.min = value
        self.max = max(self.max, value)
        self.count += count
        self.total += value * count

    def merge(self, other: Histogram) -> None:
        """Add every value ``other`` has seen to this histogram."""
        if other.count == 0:
            return
        for index, count in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + count
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total

    @property
    def mean(self) -> float:
        """Return the exact mean of the recorded values (0 when empty)."""
        return self.total / self.count if self.count else 0.0

    def value_at(self, percentile: float) -> int:
        """Return the value at ``percentile`` (0-100), nearest-rank, within ``RELATIVE_ERROR``."""
        if self.count == 0:
            return 0
        if percentile >= 100:
            return self.max
        rank = max(1, math.ceil(percentile / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                low, high = bounds_of(index)
                return min(max((low + high - 1) // 2, self.min), self.max)
        return self.max  # unreachable: the counts add up to self.count

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """Yield ``(low, high, count)`` for every non-empty bucket, lowest first."""
        for index in sorted(self._counts):
            low, high = bounds_of(index)
            yield low, high, self._counts[index]

    def to_data(self) -> HistogramData:
        """Return the histogram as a serializable struct."""
        return HistogramData(
            count=self.count,
            min=self.min,
            max=self.max,
            total=self.total,
            buckets=[(low, count) for low, _, count in self.buckets()],
        )

    @classmethod
    def from_data(cls, data: HistogramData) -> Histogram:
        """Rebuild a histogram from ``to_data``'s output.

        Raises:
            ValueError: The data was recorded with another precision or does not add up.
        """
        if data.precision != PRECISION:
            raise ValueError(f"histogram precision {data.precision} is not {PRECISION}")
        histogram = cls()
        for low, count in data.buckets:
            index = bucket_of(low)
            histogram._counts[index] = histogram._counts.get(index, 0) + count
        if sum(histogram._counts.values()) != data.count:
            raise ValueError("histogram bucket counts do not add up to its count")
        histogram.count = data.count
        histogram.min = data.min
        histogram.max = data.max
        histogram.total = data.total
        return histogram
