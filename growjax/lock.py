"""One training process per workdir: WORKDIR/lock.

    with lock.WorkdirLock(workdir):    # WorkdirError if a live run holds it
      train(...)

The lock is an advisory `flock` on WORKDIR/lock, so the kernel releases it
when its process ends, however it ends (SIGKILL included); the file's text
names its holder (host, pid, start time, command) for the refusal message. A
file left by a killed run is taken over, with a warning naming that run. On a
clean exit the file is removed; a workdir the lock had to create, and that is
still empty, is removed too, so a run refused before writing anything leaves
no trace.

Only training takes the lock (process 0 of a multi-host run: the others write
nothing of their own); evaluation, sampling, export and report only read, and
never take it. `check_usable` is the read-only test of a --workdir path (a
file, an unwritable directory) that runs before anything is built.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import logging
import os
import pathlib
import socket
import sys

log = logging.getLogger("growjax")

NAME = "lock"


class WorkdirError(RuntimeError):
  """A workdir that cannot be trained in: a file, not writable, or held by a
  live run. Names the workdir."""


def check_usable(workdir, *, what: str = "workdir") -> None:
  """Raises WorkdirError unless `workdir` is (or can be created as) a
  writable directory; the message calls it `what`. Writes nothing."""
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise WorkdirError(f"{what} {workdir}: is a file, not a directory")
  existing = workdir
  while not existing.exists():  # the nearest ancestor that exists
    existing = existing.parent
  if not existing.is_dir():
    raise WorkdirError(f"{what} {workdir}: {existing} is a file, not a "
                       "directory")
  if not os.access(existing, os.W_OK | os.X_OK):
    where = "is" if existing == workdir else f"cannot be created in {existing}:"
    raise WorkdirError(f"{what} {workdir}: {where} not writable")


def holder(workdir) -> dict | None:
  """The record of the lock's holder (host, pid, started, command), or None
  when there is no lock file or it is empty."""
  try:
    text = (pathlib.Path(workdir) / NAME).read_text()
  except FileNotFoundError:
    return None
  return _parse(text)


def _parse(text: str) -> dict | None:
  try:
    record = json.loads(text) if text.strip() else None
  except json.JSONDecodeError:
    return {"host": "?", "pid": "?", "started": "?", "command": text[:80]}
  return record if isinstance(record, dict) else None


def _describe(record: dict | None) -> str:
  if not record:
    return "another process (its record is not written yet)"
  return (f"pid {record.get('pid')} on host {record.get('host')}, started "
          f"{record.get('started')}")


class WorkdirLock:
  """Holds WORKDIR/lock while in use (a context manager). `enabled=False`
  makes it do nothing: the other processes of a multi-host run."""

  def __init__(self, workdir, *, enabled: bool = True):
    self.workdir = pathlib.Path(workdir)
    self.path = self.workdir / NAME
    self.enabled = enabled
    self._fd: int | None = None
    self._created: list[pathlib.Path] = []  # directories made for the lock

  def acquire(self) -> "WorkdirLock":
    if not self.enabled:
      return self
    check_usable(self.workdir)
    self._make_dirs()
    try:
      self._fd = self._lock()
    except BaseException:
      self._remove_dirs()
      raise
    previous = _parse(os.pread(self._fd, 1 << 16, 0).decode("utf-8", "replace"))
    if previous:  # a holder that is gone left its record: a killed run
      log.warning("workdir %s: taking over the lock of a run that is gone "
                  "(%s)", self.workdir, _describe(previous))
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "command": " ".join(sys.argv)}
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, json.dumps(record).encode(), 0)
    return self

  def _lock(self) -> int:
    """An open descriptor of WORKDIR/lock holding its flock."""
    while True:
      try:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      except OSError as e:
        raise WorkdirError(f"workdir {self.workdir}: cannot create its lock "
                           f"file ({e.strerror})") from None
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        record = _parse(os.pread(fd, 1 << 16, 0).decode("utf-8", "replace"))
        os.close(fd)
        raise WorkdirError(
            f"workdir {self.workdir}: in use by another run ({_describe(record)}); "
            "wait for it to end, or use another --workdir") from None
      except OSError as e:  # a filesystem without flock
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
          raise
        log.warning("workdir %s: this filesystem cannot lock files (%s); "
                    "nothing stops a second run on it", self.workdir, e.strerror)
        return fd
      # The file a releasing holder unlinks after we opened it is no lock.
      try:
        if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
          return fd
      except FileNotFoundError:
        pass
      os.close(fd)

  def release(self):
    if self._fd is None:
      return
    try:
      if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
        os.unlink(self.path)
    except FileNotFoundError:
      pass
    os.close(self._fd)
    self._fd = None
    self._remove_dirs()

  def _make_dirs(self):
    missing = []
    p = self.workdir
    while not p.exists():
      missing.append(p)
      p = p.parent
    for p in reversed(missing):
      try:
        p.mkdir()
      except FileExistsError:
        continue
      except OSError as e:
        self._remove_dirs()
        raise WorkdirError(f"workdir {self.workdir}: cannot be created "
                           f"({e.strerror})") from None
      self._created.append(p)

  def _remove_dirs(self):
    """The directories the lock made, where nothing else was written."""
    for p in reversed(self._created):
      try:
        p.rmdir()
      except OSError:  # not empty: the run wrote into it
        break
    self._created = []

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()
