"""How the `register` command line shows what it found: aligned tables for people, JSON on request.

Rendering never unmasks anything: it shows the values exactly as `pipeline.register.steward`
returns them (masked unless the steward asked for `--unmask`). Lists say which part of
how many they show ("showing 1-50 of 60") and how to get the next part.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

__all__ = ["as_json", "erasure_lines", "page_footer", "quarantine_entry", "quarantine_table", "review_item",
           "review_table", "table"]

NONE = "-"
ELLIPSIS = "…"


def as_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _cell(value: object, width: int | None = None) -> str:
    if value is None or value == "" or value == []:
        text = NONE
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(str(v) for v in value)
    else:
        text = " ".join(str(value).split())  # one line per row, whatever the value holds
    if width is not None and len(text) > width:
        text = text[:width - 1] + ELLIPSIS
    return text


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, right: Iterable[int] = (),
          widest: dict[int, int] | None = None) -> str:
    """Rows as aligned columns under a header line; columns in `right` align right (numbers),
    a column in `widest` is cut to that many characters."""
    widest = widest or {}
    cells = [[_cell(v, widest.get(i)) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    right = set(right)

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                         for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _when(value: str | None) -> str | None:
    """An ISO time as 'YYYY-MM-DD HH:MM' (UTC, as stored)."""
    return None if value is None else value[:16].replace("T", " ")


def page_footer(shown: int, total: int, offset: int, limit: int, what: str) -> str:
    """'showing 1-50 of 60 open reviews; next: --offset 50' and its empty cases."""
    if total == 0:
        return f"no {what}"
    if shown == 0:
        return f"showing none of {total} {what}: --offset {offset} is past the last one"
    text = f"showing {offset + 1}-{offset + shown} of {total} {what}"
    if offset + shown < total:
        text += f"; next: --offset {offset + limit}"
    return text


def review_table(items: Sequence[dict]) -> str:
    return table(("review", "probability", "reason", "left customer", "right customer", "created (UTC)",
                  "holds back from marketing", "deferred"),
                 [(r["review_id"], f"{r['probability']:.4f}", r["reason"], r["left_customer_id"],
                   r["right_customer_id"], _when(r["created_at"]), r["holds_back_from_marketing"],
                   _deferred(r.get("deferred"))) for r in items],
                 right=(0, 1, 3, 4))


def _deferred(deferral: dict | None) -> str | None:
    return f"by {deferral['by']} {_when(deferral['at'])}: {deferral['reason']}" if deferral else None


def quarantine_table(items: Sequence[dict], *, with_resolved: bool) -> str:
    headers = ["entry", "channel", "record id", "line", "file", "reasons", "quarantined (UTC)"]
    if with_resolved:
        headers.append("resolved (UTC)")
    headers.append("detail")
    rows = []
    for q in items:
        row = [q["quarantine_id"], q["channel"], q["source_record_id"], q["record_number"], q["file_name"],
               q["reasons"], _when(q["quarantined_at"])]
        if with_resolved:
            row.append(_when(q["resolved_at"]))
        row.append(q["detail"])
        rows.append(row)
    return table(headers, rows, right=(0, 3), widest={len(headers) - 1: 60, 2: 40})


def _pairs(pairs: Sequence[tuple[str, object]], indent: str = "") -> list[str]:
    width = max((len(k) for k, _ in pairs), default=0)
    return [f"{indent}{k.ljust(width)}  {_cell(v)}".rstrip() for k, v in pairs]


RECORD_ROWS = (("customer", "customer_id"), ("channel", "channel"), ("record id", "source_record_id"),
               ("observed", "observed_at"), ("first names", "first_names"), ("last name", "last_name"),
               ("identity code", "personal_id"), ("birth date", "birth_date"), ("street address", "street_address"),
               ("postal code", "postal_code"), ("city", "city"), ("phone", "phone"), ("e-mail", "email"),
               ("bank account", "iban"))


def review_item(item: dict, *, unmasked: bool) -> str:
    """One review: its state, the matcher's comparisons, the two records side by side."""
    evidence = item.get("evidence") or {}
    lines = [f"review {item['review_id']}: {item['status']}, probability {item['probability']:.4f}"
             + (f" ({evidence['reason']})" if evidence.get("reason") else "")]
    if item["decided_by"]:
        lines.append(f"decided by {item['decided_by']} on {_when(item['decided_at'])} UTC")
    for deferral in item.get("deferrals") or ():
        lines.append(f"deferred {_deferred(deferral)}")
    comparisons = evidence.get("comparisons") or {}
    if comparisons:
        lines.append("comparisons:")
        lines.extend(_pairs([(str(k), v if not isinstance(v, dict) else json.dumps(v, sort_keys=True))
                             for k, v in comparisons.items()], "  "))
    left, right = item["left"] or {}, item["right"] or {}
    lines.append("")
    lines.append(table(("", "left", "right"),
                       [(label, left.get(key), right.get(key)) for label, key in RECORD_ROWS]))
    lines.append("")
    lines.append("values in the clear (--unmask)" if unmasked else "values masked; --unmask shows them")
    return "\n".join(lines)


def quarantine_entry(entry: dict, *, unmasked: bool) -> str:
    """One quarantine entry: where it came from, why, and its raw values (masked unless asked)."""
    state = f"resolved {_when(entry['resolved_at'])} UTC" if entry["resolved_at"] else "open"
    file_text = entry["file_name"] and f"{entry['channel']}/{entry['file_name']} (intake file {entry['intake_file_id']})"
    pairs: list[tuple[str, object]] = [
        ("channel", entry["channel"]), ("file", file_text), ("record id", entry["source_record_id"]),
        ("line", entry["record_number"]), ("reasons", entry["reasons"]), ("detail", entry["detail"]),
        ("quarantined", f"{_when(entry['quarantined_at'])} UTC")]
    if entry["resolved_at"]:
        pairs.append(("accepted from", entry["resolved_file_name"] and
                      f"{entry['channel']}/{entry['resolved_file_name']} (intake file {entry['resolved_intake_file_id']})"))
    lines = [f"quarantine entry {entry['quarantine_id']}: {state}", *_pairs(pairs)]
    raw = entry["raw_values"]
    if entry["raw_purged"]:
        lines.append("raw values: purged (retention or erasure)")
    elif raw:
        lines.append("raw values (in the clear: --unmask):" if unmasked
                     else "raw values (masked; --unmask shows them):")
        lines.extend(_pairs([(str(k), v) for k, v in raw.items()], "  "))
    else:
        lines.append("raw values: none")
    return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    shown = [f"{k} {v}" for k, v in sorted(counts.items()) if v]
    return ", ".join(shown) if shown else "nothing"


def erasure_lines(done, *, dry_run: bool) -> list[str]:
    """What an erasure did (or, `dry_run`, would do): customer ids and counts, never a value."""
    prefix = "dry run, nothing changed: would erase" if dry_run else "erased"
    lines = []
    if not done.customer_ids:
        lines.append(f"{'would find' if dry_run else 'found'} no customer holding the code")
    for customer_id, kind in done.kinds.items():
        what = ("everything (no contract)" if kind == "prospect"
                else "all but the billing identity and services (a contract)")
        lines.append(f"{prefix} customer {customer_id}: {what}")
    lines.append(f"{'would delete' if dry_run else 'deleted'}: {_counts(done.deleted)}")
    lines.append(f"quarantine entries {'to purge' if dry_run else 'purged'}: {done.purged['quarantine']}; "
                 f"tombstones {'to leave' if dry_run else 'left'} (a re-send stays erased): {done.tombstones}; "
                 f"kept: {_counts(done.kept)}")
    return lines


def disclosure_table(items: Sequence[dict]) -> str:
    return table(["id", "disclosed (UTC)", "kind", "recipient", "customers", "by"],
                 [(d["disclosure_id"], _when(d["disclosed_at"]), d["kind"], d["recipient"], d["customer_count"],
                   d["disclosed_by"]) for d in items], right=(0, 4), widest={3: 40, 5: 36})


def disclosure_item(item: dict) -> str:
    details = item.get("details") or {}
    lines = _pairs([("disclosure", item["disclosure_id"]), ("kind", item["kind"]),
                    ("disclosed (UTC)", _when(item["disclosed_at"])), ("by", item["disclosed_by"]),
                    ("recipient", item["recipient"]), ("purpose", item["purpose"]),
                    ("legal basis", item["legal_basis"]), ("customers", item["customer_count"])])
    for key, value in details.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += _pairs(sorted(value.items()), indent="  ")
        else:
            lines += _pairs([(key, value)])
    return "\n".join(lines)
