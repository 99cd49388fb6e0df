"""The thresholds of the matcher's three outcomes, in one place.

A code-less record's best match probability links it (at or above
`link_threshold`), proposes a review (at or above `review_threshold`), or leaves
it a customer of its own; a weaker pair, at or above `doubt_threshold`, is put to
review as well when one of its records prohibits direct marketing (the doubt keeps
the other customer off the marketing list until a steward decides: one who said no
by phone, in a record too poor to link, is not marketed to through another record);
`ambiguity_margin` (match weight, log2 Bayes factor) is
how close two candidate people must be for a record to fit both
(`pipeline.matching.cluster`, rule 3). Configured through the `matching` resource.

>>> MatchSettings().link_threshold, MatchSettings().review_threshold, MatchSettings().doubt_threshold
(0.95, 0.8, 0.3)
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.matching.cluster import DEFAULT_AMBIGUITY_MARGIN

# Scored pairs taken from DuckDB at once (`pipeline.matching.score.score_pairs`); what a big
# load's scoring holds in Python is set by this, not by the load.
SCORE_BATCH_ROWS = 1_000_000


@dataclass(frozen=True)
class MatchSettings:
    """Thresholds of the three outcomes (probability), from configuration."""

    link_threshold: float = 0.95
    review_threshold: float = 0.80
    # 0.3, not 0.5: at 1M varied records it reaches 28 of the 88 prohibited people still
    # listed instead of 23, through 1,572 pairs instead of 1,242 (801 more reviews: one per
    # pair of customers; bench/README.md). With the doubt-only rule (names alone), 0.1 instead
    # reaches 5 more of the 53 still listed for 1,666 more reviews: not the default.
    doubt_threshold: float = 0.30
    ambiguity_margin: float = DEFAULT_AMBIGUITY_MARGIN
    max_rounds: int = 200  # rounds of growing the affected set before the resolver stops
    # Scored pairs Python takes from DuckDB at once and cuts to those kept: a big load's scoring
    # memory is set by this and DuckDB's own limit, not by the load; the pairs are the same
    # whatever it is. A million: about 125 MB of levels and weights a batch (two ids and 17
    # numbers a pair); the 1M first load's peak was 2,827 MiB with it (bench/README.md).
    score_batch_rows: int = SCORE_BATCH_ROWS
    # Resolved records whose golden records, provenance and services are made and written at
    # once (`pipeline.register.resolve.write_parts`): parts of whole clusters, customers and
    # reviews, so the customers are the same whatever it is.
    resolve_part_records: int = 200_000
