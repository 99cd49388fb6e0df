"""The synthetic landing-zone generator and its ground truth.

`generate(out_dir, records=...)` writes five channels' daily export files, byte
for byte in the formats of docs/intake_formats.md, for synthetic people living in households,
with honest typing noise (two profiles: `default`, and `varied`, written apart
from the matcher), re-sends and (optionally) bad input; and a ground truth saying
who sent each record (`truth.py` scores a grouping against it). `register-synth`
is its command line.
"""

from synth.landing_zone import (GROUND_TRUTH_FILE, NOISE_PROFILES, TRUTH_COLUMNS, FileSummary, Summary,
                                generate)

__all__ = ["GROUND_TRUTH_FILE", "NOISE_PROFILES", "TRUTH_COLUMNS", "FileSummary", "Summary", "generate"]
