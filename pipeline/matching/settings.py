"""The thresholds of the matcher's three outcomes, in one place.

A code-less record's best match probability links it (at or above
`link_threshold`), proposes a review (at or above `review_threshold`), or leaves
it a customer of its own; `ambiguity_margin` (match weight, log2 Bayes factor) is
how close two candidate people must be for a record to fit both
(`pipeline.matching.cluster`, rule 3). Configured through the `matching` resource.

>>> MatchSettings().link_threshold, MatchSettings().review_threshold
(0.95, 0.8)
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.matching.cluster import DEFAULT_AMBIGUITY_MARGIN


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the three outcomes (probability), from configuration."""

    link_threshold: float = 0.95
    review_threshold: float = 0.80
    ambiguity_margin: float = DEFAULT_AMBIGUITY_MARGIN
    max_rounds: int = 200  # rounds of growing the affected set before the resolver stops
