"""Masking for anything that may reach a log, an error or run metadata.

Rule 7 of docs/register_rules.md: counts and masked values only. These helpers keep just
enough to recognise a value's shape, never enough to identify a person.

>>> mask("120385-1232")
'1*********2'
>>> mask("FI2112345600000785")
'F****************5'
>>> mask("")
''
>>> mask_email("aino.makinen@example.fi")
'a***@example.fi'
"""

from __future__ import annotations


def mask(value: str | None) -> str:
    """Keep the first and last character, star the rest."""
    if not value:
        return ""
    if len(value) <= 2:
        return "*" * len(value)
    return value[0] + "*" * (len(value) - 2) + value[-1]


def mask_email(value: str | None) -> str:
    """Keep the first letter of the local part and the domain."""
    if not value or "@" not in value:
        return mask(value)
    local, _, domain = value.rpartition("@")
    return (local[:1] + "***@" + domain) if local else mask(value)
