r"""Multi-host on one machine: N JAX processes, each with its own devices.

    python -m growjax.launch --processes 2 --devices 4 -- \
        python -m growjax.main --config experiments/toy.py:runlocal --workdir runs/toy2

starts the command N times with what `growjax.parallel.initialize_distributed`
reads: JAX_COORDINATOR_ADDRESS (a free port on localhost, where process 0
runs the coordinator), JAX_NUM_PROCESSES and JAX_PROCESS_ID, and D devices
per process. With `--platform cpu` (the default) each process gets D
simulated CPU devices (JAX_NUM_CPU_DEVICES) and the processes talk through
JAX's CPU collectives (gloo, over TCP): the same multi-controller runtime a
TPU pod or a GPU cluster runs, so every multi-host path of the trainer (each
process's rows of the batch, orbax's multi-process checkpoints, process 0
writing, the preemption agreement) runs here. With `--platform gpu` process
k owns GPUs k*D .. (k+1)*D - 1 (CUDA_VISIBLE_DEVICES).

Each line a process prints is printed with its `[pK] ` prefix (stdout to
stdout, stderr to stderr). When one process fails, the others are stopped
(SIGTERM, then SIGKILL after --grace seconds: a peer waiting on a collective
of a dead process would wait for ever) and the launcher exits with the
failure's status (128 + N for a process killed by signal N). SIGINT or
SIGTERM sent to the launcher reaches every process as SIGTERM, on which
the trainer's processes agree on a step, save and stop (a second one kills
them): Ctrl-C stops a multi-host run as it does a single-process one.

A real cluster needs no launcher: SLURM's `srun` and Cloud TPU pods set
their own environment, which initialize_distributed detects (README,
"Multi-host").
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

# The variables the launcher sets: a user's own values would mislead the children.
_DROPPED = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
            "JAX_NUM_CPU_DEVICES", "JAX_LOCAL_DEVICE_IDS")


def free_port() -> int:
  """A TCP port on localhost that nothing listens on now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(base: dict, *, index: int, processes: int, devices: int,
                port: int, platform: str) -> dict:
  """The environment of process `index`: `base` and the multi-host launch."""
  env = {k: v for k, v in base.items() if k not in _DROPPED}
  env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
             JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(index))
  if platform == "cpu":
    # JAX_NUM_CPU_DEVICES wins over XLA_FLAGS' device count (JAX's own rule).
    env.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES=str(devices))
  else:
    env["CUDA_VISIBLE_DEVICES"] = ",".join(
        str(i) for i in range(index * devices, (index + 1) * devices))
  return env


def _pipe(stream, out, prefix: str, lock: threading.Lock):
  for line in iter(stream.readline, ""):
    with lock:
      out.write(prefix + line if line.endswith("\n") else prefix + line + "\n")
      out.flush()
  stream.close()


def _status(returncode: int) -> int:
  """A child's exit status as a shell reports it (128 + N for signal N)."""
  return 128 - returncode if returncode < 0 else returncode


def launch(command: Sequence[str], *, processes: int, devices: int,
           platform: str = "cpu", port: int | None = None,
           grace: float = 10.0) -> int:
  """Runs `command` as `processes` JAX processes of `devices` devices each;
  returns 0, or the exit status of the first process that failed."""
  port = free_port() if port is None else port
  lock = threading.Lock()
  procs, pipes = [], []
  for k in range(processes):
    try:
      p = subprocess.Popen(
          list(command), env=process_env(dict(os.environ), index=k,
                                         processes=processes, devices=devices,
                                         port=port, platform=platform),
          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
          errors="replace", bufsize=1,
          start_new_session=True)  # a terminal's Ctrl-C reaches the launcher only
    except OSError as e:
      print(f"growjax.launch: cannot start {command[0]!r}: {e.strerror}",
            file=sys.stderr)
      _stop(procs, grace)
      return 127
    procs.append(p)
    for stream, out in ((p.stdout, sys.stdout), (p.stderr, sys.stderr)):
      t = threading.Thread(target=_pipe, args=(stream, out, f"[p{k}] ", lock),
                           daemon=True)
      t.start()
      pipes.append(t)

  with lock:  # the pids: to signal one process (a preemption of one host)
    print(f"growjax.launch: {processes} processes of {devices} {platform} "
          f"devices, coordinator 127.0.0.1:{port}, pids "
          f"{' '.join(str(p.pid) for p in procs)}", file=sys.stderr, flush=True)

  signals = []

  def forward(signum, frame):
    # Multi-host, SIGTERM is the polite signal: JAX's preemption service
    # catches it and the processes agree on a step to save at (a SIGINT
    # would raise KeyboardInterrupt in each). A second signal kills.
    del signum, frame
    signals.append(1)
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGTERM if len(signals) == 1 else signal.SIGKILL)

  previous = {sig: signal.signal(sig, forward)
              for sig in (signal.SIGINT, signal.SIGTERM)}
  try:
    while True:
      codes = [p.poll() for p in procs]  # every one, each time
      failed = next((p for p, c in zip(procs, codes) if c), None)
      if failed is not None or all(c == 0 for c in codes):
        break
      time.sleep(0.05)
    if failed is not None:
      k = procs.index(failed)
      running = [p for p in procs if p.poll() is None]
      with lock:
        print(f"growjax.launch: process {k} exited with status "
              f"{_status(failed.returncode)}; stopping the "
              f"{len(running)} still running", file=sys.stderr, flush=True)
      _stop(running, grace)
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  for t in pipes:
    t.join(timeout=5)
  return 0 if failed is None else _status(failed.returncode)


def _stop(procs, grace: float):
  for p in procs:
    p.terminate()
  deadline = time.monotonic() + grace
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def parse(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m growjax.launch",
      description="Run a command as N JAX processes on this machine "
                  "(multi-host, simulated).",
      usage="%(prog)s --processes N --devices D [options] -- COMMAND ...")
  parser.add_argument("--processes", type=int, required=True,
                      help="how many JAX processes (simulated hosts)")
  parser.add_argument("--devices", type=int, required=True,
                      help="devices per process")
  parser.add_argument("--platform", choices=("cpu", "gpu"), default="cpu",
                      help="cpu: simulated CPU devices; gpu: D GPUs each")
  parser.add_argument("--port", type=int, default=None,
                      help="the coordinator's port on localhost (default: a free one)")
  parser.add_argument("--grace", type=float, default=10.0,
                      help="seconds between SIGTERM and SIGKILL when stopping "
                           "the others after a failure")
  parser.add_argument("command", nargs=argparse.REMAINDER,
                      help="the command each process runs, after --")
  args = parser.parse_args(argv)
  if args.command[:1] == ["--"]:
    args.command = args.command[1:]
  for name in ("processes", "devices"):
    if getattr(args, name) < 1:
      parser.error(f"--{name}: {getattr(args, name)} is not a positive integer")
  if not args.command:
    parser.error("no command: give it after --, e.g. -- python -m growjax.main ...")
  return args


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(sys.argv[1:] if argv is None else argv)
  return launch(args.command, processes=args.processes, devices=args.devices,
                platform=args.platform, port=args.port, grace=args.grace)


if __name__ == "__main__":
  sys.exit(main())
