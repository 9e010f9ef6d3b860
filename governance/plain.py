"""Values as JSON holds them, for results the engines return."""

import math


def json_safe(value: object) -> object:
    """NumPy scalars as plain numbers, NaN and infinities by name (JSON has neither), tuples
    as lists, keys as text."""
    if hasattr(value, "item") and not isinstance(value, dict | list | tuple):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
