"""One way to show progress: a tqdm bar on a terminal, plain lines elsewhere.

    from growjax import progress
    with progress.bar(total=len(windows), desc="length", unit="window") as b:
      for w in windows:
        ...
        b.update()

On a terminal the bar redraws in place. When its stream is not a terminal (a
log file, a pipe, a notebook's captured stderr) it writes one plain line when
it starts, then at most one every `every` seconds, then one when it closes, so
a log reads top to bottom. `warmup` steps (the first one compiles) are left
out of the elapsed time, the rate and the ETA. `LogHandler` writes log records through
`tqdm.write`, so a log line never lands on a bar's line; `command.setup_logging`
installs it for every command.
"""

from __future__ import annotations

import logging
import sys

import tqdm

EVERY_SECONDS = 15.0  # a plain line at most this often when not on a terminal


class _Lines:
  """A stream for a bar off a terminal: tqdm's redraws ('\\r' + text +
  padding) become whole lines; its clears and bare newlines are dropped."""

  def __init__(self, stream):
    self.stream = stream

  def write(self, s: str):
    text = s.replace("\r", "").rstrip()
    if text:
      self.stream.write(text + "\n")

  def flush(self):
    self.stream.flush()


class Bar(tqdm.tqdm):
  """tqdm whose elapsed time, rate and ETA count from after its first
  `warmup` updates (a compiling step would skew them for long after)."""

  def __init__(self, *args, warmup: int = 0, **kwargs):
    self._warmup_left = warmup
    self._lines = isinstance(kwargs.get("file"), _Lines)
    super().__init__(*args, **kwargs)

  def update(self, n=1):
    if self._warmup_left <= 0 or self.disable or not n:
      return super().update(n)
    self.n += n  # a warmup (compiling) step: counted, not timed
    self._warmup_left -= 1
    if self._warmup_left == 0:
      self.restart_clock()
    self.refresh()
    return True

  def close(self):
    if self._lines and not self.disable and self.n == self.last_print_n:
      self.leave = False  # its last line is already written
    super().close()

  def restart_clock(self):
    """Counts elapsed time, rate and ETA from now and from the count now."""
    self.initial = self.last_print_n = self.n
    self.start_t = self.last_print_t = self._time()
    self._ema_dn = tqdm.std.EMA(self.smoothing)
    self._ema_dt = tqdm.std.EMA(self.smoothing)
    self._ema_miniters = tqdm.std.EMA(self.smoothing)


def is_terminal(stream) -> bool:
  isatty = getattr(stream, "isatty", None)
  try:
    return bool(isatty and isatty())
  except ValueError:  # a closed stream
    return False


def bar(total=None, *, desc: str = "", unit: str = "it", initial: int = 0,
        warmup: int = 0, disable: bool = False, file=None,
        every: float = EVERY_SECONDS, **kwargs) -> Bar:
  """A progress bar on `file` (stderr): redrawn on a terminal, else a plain
  line every `every` seconds; rate and ETA after `warmup` updates."""
  stream = sys.stderr if file is None else file
  if is_terminal(stream):
    return Bar(total=total, desc=desc, unit=unit, initial=initial,
               warmup=warmup, disable=disable, file=stream, dynamic_ncols=True,
               **kwargs)
  return Bar(total=total, desc=desc, unit=unit, initial=initial, warmup=warmup,
             disable=disable, file=_Lines(stream), mininterval=every,
             maxinterval=float("inf"), miniters=1, ascii=True,
             bar_format=("{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) "
                         "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"),
             **kwargs)


def write(line: str, file=None):
  """Prints `line` above any bar on the same terminal."""
  tqdm.tqdm.write(line, file=sys.stderr if file is None else file)


class LogHandler(logging.StreamHandler):
  """Log records through `tqdm.write`: a bar on the same terminal is cleared
  and redrawn below the line instead of the line being glued onto it."""

  def emit(self, record):
    try:
      tqdm.tqdm.write(self.format(record), file=self.stream)
      self.flush()
    except Exception:  # pylint: disable=broad-except
      self.handleError(record)
