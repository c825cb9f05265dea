#!/usr/bin/env bash
# One ten-minute device call of a study split over machines that share no
# disk (experiments/growth_study_v2.py says why and how many calls):
#
#   bash benchmarks/study_call.sh CONFIG STEM ARMS [DEADLINE_S [GUARD_S]]
#   bash benchmarks/study_call.sh experiments/growth_study_v2.py:regime=1 \
#       growth_study_v2_r1 scratch 330 500
#
# Installs the wheels carried in .whl/ when jax's companions are missing
# (the lent GPU machine has JAX, flax, optax and orbax, not the rest), marks
# done what benchmarks/results already holds of STEM, trains ARMS (comma-
# separated) starting no trunk after DEADLINE_S, exports, and packs STEM's
# results into $OUT/STEM.tgz when $OUT is set (the device tool brings back
# at most 8 files: unpack it in the repository root with `tar xzf`).
# GUARD_S (seconds from the study's start) sends the study one SIGTERM, its
# preemption signal: the run in flight checkpoints and stops, and the finished
# runs are still exported before the call's time limit kills everything.
# STUDY_PARALLEL=N trains N runs at once on GPU 0 (`--parallel N --devices
# 0,...`), each process held to 0.9/(N+1) of its memory: whether sharing the
# GPU trains small models faster in total is to be measured (at 33.6M
# parameters it did not).
set -euo pipefail
config=$1 stem=$2 arms=$3 deadline=${4:-300} guard=${5:-}
parallel=${STUDY_PARALLEL:-1}
cd "$(dirname "$0")/.."
if ! python3 -c "import ml_collections, grain" 2>/dev/null && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl .whl/*.tar.gz
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
resume=() shared=()
if (( parallel > 1 )); then
  shared=(--parallel "$parallel" --devices "$(printf '0,%.0s' $(seq "$parallel") | sed 's/,$//')")
  export XLA_PYTHON_CLIENT_MEM_FRACTION=$(python3 -c "print(round(.9 / ($parallel + 1), 3))")
fi
if [ -f "benchmarks/results/$stem.json" ]; then
  resume=(--resume_from benchmarks/results)
fi
python3 -m growjax.study --config "$config" --workdir "/tmp/study_$stem" \
  --arms "$arms" --deadline_s "$deadline" "${resume[@]}" "${shared[@]}" \
  --export benchmarks/results &
pid=$! start=$SECONDS termed=
while kill -0 $pid 2>/dev/null; do
  sleep 2
  if [ -n "$guard" ] && [ -z "$termed" ] && (( SECONDS - start >= guard )); then
    echo "study_call: SIGTERM at $((SECONDS - start)) s (the guard)" >&2
    kill -TERM $pid 2>/dev/null || true; termed=1  # once: a second stops at once
  fi
done
status=0
wait $pid || status=$?
if [ -n "${OUT:-}" ] && [ -f "benchmarks/results/$stem.json" ]; then
  mkdir -p "$OUT"
  tar czf "$OUT/$stem.tgz" benchmarks/results/"$stem".* \
    "benchmarks/results/metrics/$stem"
fi
exit $status
