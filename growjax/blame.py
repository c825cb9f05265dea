"""Whose fault a ValueError is.

growjax's own checks (growjax.checks, the configs' validation, the data
pipeline's) raise ValueErrors that name a value a user gave; the entry points
turn those into one-line errors. The same class raised inside JAX, numpy or
another library is a bug or an unforeseen case, and must keep its traceback.
`raised_by_growjax` tells them apart by the frame that raised it.
"""

from __future__ import annotations

import os
import traceback

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def raised_by_growjax(e: BaseException) -> bool:
  """Whether the innermost frame of `e`'s traceback is growjax's code."""
  frames = traceback.extract_tb(e.__traceback__)
  return bool(frames) and os.path.abspath(frames[-1].filename).startswith(_PACKAGE)
