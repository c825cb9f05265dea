"""Shared test setup.

Eight simulated CPU devices (set before jax is imported) so mesh tests run on
one machine, and two hypothesis profiles: `ci` (default, few examples, few
compiles) and `dev` (run with `--hypothesis-profile=dev` for a deeper search).
"""

import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gc  # noqa: E402
import tempfile  # noqa: E402

import hypothesis  # noqa: E402
import jax  # noqa: E402
import pytest  # noqa: E402

# One compilation cache for the session and the commands tests start (they
# pass it on), so a program compiled once is loaded, not compiled, again.
def _cache_dir() -> str:
  """GROWJAX_TEST_JAX_CACHE, else one directory per test run, shared by its
  xdist workers (the same run id), else a fresh one."""
  if "GROWJAX_TEST_JAX_CACHE" in os.environ:
    return os.environ["GROWJAX_TEST_JAX_CACHE"]
  run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
  if run:
    path = pathlib.Path(tempfile.gettempdir()) / f"growjax_jax_cache_{run}"
    path.mkdir(exist_ok=True)
    return str(path)
  return tempfile.mkdtemp(prefix="growjax_jax_cache_")


jax.config.update("jax_compilation_cache_dir", _cache_dir())
# Tolerances here are float32's; GPUs otherwise multiply float32 in TF32.
jax.config.update("jax_default_matmul_precision", "highest")

hypothesis.settings.register_profile(
    "ci", max_examples=8, deadline=None, derandomize=True,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.register_profile(
    "dev", max_examples=200, deadline=None,
    suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Every CPU executable XLA compiles maps about three memory regions, and the
# jit caches keep every executable alive. The whole suite compiles about
# 20,000 of them: near 90% of it the process passed Linux's default limit of
# 65,530 mappings (vm.max_map_count), mmap failed inside LLVM and CI died with
# a segfault in compile (the map count was measured climbing past 32,000 at
# 44%). So after any test file that leaves the process over MAP_LIMIT
# mappings, the caches are cleared (tests within a file still share their
# compiled programs).
MAP_LIMIT = 20_000


def _mappings() -> int:
  try:
    with open("/proc/self/maps", "rb") as f:
      return sum(1 for _ in f)
  except OSError:  # not Linux
    return 0


@pytest.fixture(autouse=True, scope="module")
def _release_executables():
  yield
  if _mappings() > MAP_LIMIT:
    jax.clear_caches()
    gc.collect()


REPO = pathlib.Path(__file__).resolve().parents[1]
SHAKESPEARE = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(scope="session")
def text_path(tmp_path_factory):
  """A real text: tinyshakespeare beside the clone, else ~300 KB of the
  standard library's source written to a file (a user's machine has no
  ../shared)."""
  if SHAKESPEARE.exists():
    return SHAKESPEARE
  from growjax.data import documents  # pylint: disable=g-import-not-at-top
  chunks, size = [], 0
  for p in documents.python_files(documents.stdlib_root()):
    chunks.append(p.read_text(encoding="utf-8", errors="replace"))
    size += len(chunks[-1])
    if size > 300_000:
      break
  path = tmp_path_factory.mktemp("text") / "fallback.txt"
  path.write_text("".join(chunks), encoding="utf-8")
  return path


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """One data cache for the whole session, so corpora and tokenizers are
  prepared once."""
  return tmp_path_factory.mktemp("growjax_data")
