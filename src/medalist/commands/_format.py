"""Number formatting shared by the commands' tables and lines."""

from __future__ import annotations


def fmt(x: float | None, digits: int = 4) -> str:
    """`x` with `digits` decimals; "-" for a missing value (None or NaN)."""
    return "-" if x is None or x != x else f"{x:.{digits}f}"
