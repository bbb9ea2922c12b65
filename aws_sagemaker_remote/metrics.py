"""Training metrics read from log lines, by SageMaker's ``MetricDefinitions`` rule.

A metric is a ``(name, regex)`` pair; in a log line, the regex's first group
(the whole match when it has none) is the metric's value when it reads as a
number. The watch code shows the values while a job runs, and the local backend
uses the same rule for ``FinalMetricDataList``.

This module knows nothing of flags or AWS: a bad regex is a plain
:class:`ValueError`. Each caller says what it means to its own user: the
planner refuses ``--sagemaker-metric`` before anything runs, the local backend
answers ``ValidationException`` as SageMaker does. Standard library only.
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence, Tuple


class MetricTracker:
    """The latest value of each metric found in log lines.

    :param metrics: ``(name, regex)`` pairs; the regex's first group is the value
        (the whole match when it has no group), as in SageMaker's MetricDefinitions.
    :raises ValueError: a regex does not compile; the message names the metric
        and the regex.
    """

    def __init__(self, metrics: Sequence[Tuple[str, str]] = ()) -> None:
        self._patterns: List[Tuple[str, "re.Pattern[str]"]] = []
        for name, regex in metrics:
            try:
                self._patterns.append((name, re.compile(regex)))
            except re.error as exc:
                raise ValueError(f"metric {name!r}: invalid regex {regex!r}: {exc}") from None
        self.values: Dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def match(self, line: str) -> Dict[str, float]:
        """The metrics one log line holds, by name; remembers their values."""
        found: Dict[str, float] = {}
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if not match:
                continue
            text = match.group(1) if pattern.groups else match.group(0)
            try:
                found[name] = float(text)
            except (TypeError, ValueError):
                continue
        self.values.update(found)
        return found

    def feed(self, line: str) -> bool:
        """Match one log line; True when a metric's value changed."""
        before = dict(self.values)
        self.match(line)
        return self.values != before

    def line(self) -> str:
        """``[metrics] loss=0.25 accuracy=0.9`` (in declaration order, metrics seen so far)."""
        shown = [f"{name}={self.values[name]:g}" for name, _ in self._patterns if name in self.values]
        return "[metrics] " + " ".join(shown)
