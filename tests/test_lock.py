"""The workdir lock: one training process per workdir, a dead one's lock taken over."""

import json
import logging
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

from growjax import lock

REPO = pathlib.Path(__file__).resolve().parents[1]

HOLD = """
import sys
from growjax import lock
held = lock.WorkdirLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills this process)
held.release()
"""


def holder_process(workdir):
  """A process holding the lock of `workdir` (after it printed "held")."""
  proc = subprocess.Popen(
      [sys.executable, "-c", HOLD, str(workdir)], cwd=REPO, text=True,
      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
      env=dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu"))
  assert proc.stdout.readline() == "held\n"
  return proc


def test_a_second_run_on_a_held_workdir_is_refused_naming_host_and_pid(tmp_path):
  proc = holder_process(tmp_path)
  try:
    with pytest.raises(lock.WorkdirError) as refused:
      lock.WorkdirLock(tmp_path).acquire()
    message = str(refused.value)
    assert f"workdir {tmp_path}: in use by another run (pid {proc.pid} on host " \
           f"{socket.gethostname()}, started " in message
  finally:
    proc.stdin.close()
    proc.wait(timeout=60)
  assert not (tmp_path / lock.NAME).exists()  # released cleanly
  with lock.WorkdirLock(tmp_path):
    assert lock.holder(tmp_path)["pid"] == os.getpid()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_warning(tmp_path, caplog):
  proc = holder_process(tmp_path)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  assert lock.holder(tmp_path)["pid"] == proc.pid  # its record stays behind
  with caplog.at_level(logging.WARNING, logger="growjax"):
    with lock.WorkdirLock(tmp_path):
      assert lock.holder(tmp_path)["pid"] == os.getpid()
  assert f"taking over the lock of a run that is gone (pid {proc.pid} on host " \
         f"{socket.gethostname()}" in caplog.text
  assert not (tmp_path / lock.NAME).exists()


def test_a_lock_refused_or_released_leaves_no_trace(tmp_path):
  workdir = tmp_path / "a" / "b"
  with lock.WorkdirLock(workdir):
    assert workdir.is_dir()
  assert not (tmp_path / "a").exists()  # made for the lock, empty, removed
  with lock.WorkdirLock(workdir):
    (workdir / "metrics.jsonl").write_text("{}\n")
  assert sorted(p.name for p in workdir.iterdir()) == ["metrics.jsonl"]


def test_other_processes_of_a_multihost_run_take_no_lock(tmp_path):
  with lock.WorkdirLock(tmp_path, enabled=False):
    assert not (tmp_path / lock.NAME).exists()
    with lock.WorkdirLock(tmp_path):  # process 0's
      pass


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("x"), "is a file, not a directory"),
    (lambda p: None, None),
])
def test_check_usable_names_a_file_and_accepts_a_new_directory(tmp_path, make,
                                                               expected):
  path = tmp_path / "w"
  make(path)
  if expected is None:
    lock.check_usable(path / "deeper")
    assert not path.exists()  # writes nothing
  else:
    with pytest.raises(lock.WorkdirError, match=expected):
      lock.check_usable(path)


def test_a_garbled_lock_record_still_refuses_while_held(tmp_path):
  held = lock.WorkdirLock(tmp_path).acquire()
  try:
    os.pwrite(held._fd, b"garbage", 0)  # pylint: disable=protected-access
    with pytest.raises(lock.WorkdirError, match="in use by another run"):
      lock.WorkdirLock(tmp_path).acquire()
    json.dumps(lock.holder(tmp_path))  # readable, whatever it holds
  finally:
    held.release()
