"""Stable shares: a customer's place in a holdout or a control group, decided by a hash
so that it is the same on every run and machine (not Python's salted `hash`)."""

import hashlib
from typing import Any


def stable_share(*parts: Any) -> int:
    """0-99 from the parts, the same on every run and machine."""
    digest = hashlib.blake2b(":".join(str(p) for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 100
