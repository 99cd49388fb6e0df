"""People's rights over the register (docs/register_rules.md rule 8): access, rectification, erasure.

One module per verb, and what they share below them:

- `subject`: finding the subject, one person as the register holds them (by
  customer id through its merges, or by personal identity code);
- `access`: collecting everything held on the subject (`subject_access`, values
  in the clear: it is the person's own data) and rendering it for the person to
  read (`render_report`);
- `rectification`: one attribute corrected on the golden row and on the record
  its provenance names (`rectify`);
- `reasons`: the check that a request's recorded reason holds no personal value;
- `erasure`: the one erasure home: the request (`erase`), the deletion of
  erased people's source records (also the retention sweep's), and the
  tombstones that keep a re-sent record erased;
- `request`: what every request shares (`RightsError`, the `rights_request` row).

Each request writes a `rights_request` row with the steward's name, the reason and
counts, never a personal value; messages and errors carry ids and counts only. A
request runs in one transaction that waits for loads and steward decisions (the
register lock, `pipeline.register.locks`, on PostgreSQL; an immediate write lock
on SQLite). This package offers the verbs a steward's tool calls; the helpers
stay in their modules.
"""

from pipeline.register.rights.access import ACCESS_SECTIONS, REPORT_LANGUAGES, render_report, subject_access
from pipeline.register.rights.erasure import BILLING_IDENTITY, Erasure, erase
from pipeline.register.rights.rectification import RECTIFIABLE, Rectification, rectify
from pipeline.register.rights.request import RightsError
from pipeline.register.rights.subject import Subject, find_subject

__all__ = ["ACCESS_SECTIONS", "REPORT_LANGUAGES", "BILLING_IDENTITY", "RECTIFIABLE", "RightsError", "Subject", "Rectification",
           "Erasure", "find_subject", "subject_access", "render_report", "rectify", "erase"]
