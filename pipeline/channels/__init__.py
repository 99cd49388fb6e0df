"""One reader per channel format. `READERS[channel](path)` reads one landed file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.channels import email, in_person, mail, phone, web
from pipeline.channels.base import ChannelRead, UnreadableFile

MODULES = {m.CHANNEL: m for m in (web, phone, mail, email, in_person)}
READERS: dict[str, Callable[[Path], ChannelRead]] = {name: m.read for name, m in MODULES.items()}

__all__ = ["ChannelRead", "MODULES", "READERS", "UnreadableFile"]
