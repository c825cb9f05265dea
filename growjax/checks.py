"""The one place where a value is checked: each helper raises a ValueError that
names the field, shows the value and says what was expected, e.g.

    batch_size: 0 is not an integer >= 1

Every layer (model and data configs, experiment files, cost, growth options,
the data pipeline) calls these instead of writing its own test, so a message
reads the same wherever it comes from. Nothing here imports JAX.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable


def is_int(value: Any) -> bool:
  """An int, not a bool (numpy integers count)."""
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
  """A finite real number, not a bool."""
  return (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value))


def integer(name: str, value: Any, *, low: int | None = None,
            high: int | None = None) -> int:
  """`value` as an int within [low, high]; else ValueError naming `name`."""
  bounds = (f" >= {low}" if low is not None else "") + (
      f" and <= {high}" if high is not None and low is not None
      else f" <= {high}" if high is not None else "")
  if not is_int(value) or (low is not None and value < low) or (
      high is not None and value > high):
    raise ValueError(f"{name}: {value!r} is not an integer{bounds}")
  return int(value)


def positive_int(name: str, value: Any) -> int:
  return integer(name, value, low=1)


def number(name: str, value: Any, *, low: float | None = None,
           high: float | None = None, low_open: bool = False) -> float:
  """`value` as a float within its bounds (`low_open`: strictly above low)."""
  ok = is_number(value)
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value <= high
  if not ok:
    parts = []
    if low is not None:
      parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
      parts.append(f"<= {high:g}")
    bounds = (" " + " and ".join(parts)) if parts else ""
    raise ValueError(f"{name}: {value!r} is not a number{bounds}")
  return float(value)


def positive_number(name: str, value: Any) -> float:
  if not is_number(value) or not value > 0:
    raise ValueError(f"{name}: {value!r} is not a positive number")
  return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
  choices = tuple(choices)
  if value not in choices:
    raise ValueError(f"{name}: {value!r} is not one of {list(choices)}")
  return value


def boolean(name: str, value: Any) -> bool:
  if not isinstance(value, bool):
    raise ValueError(f"{name}: {value!r} is not a bool")
  return value
