#!/usr/bin/env bash
# One ten-minute device call of a study split over machines that share no
# disk (experiments/growth_study_v2.py says why and how many calls):
#
#   bash benchmarks/study_call.sh CONFIG STEM ARMS [DEADLINE_S]
#   bash benchmarks/study_call.sh experiments/growth_study_v2.py:regime=1 \
#       growth_study_v2_r1 scratch 300
#
# Installs the wheels carried in .whl/ when jax's companions are missing
# (the lent GPU machine has JAX, flax, optax and orbax, not the rest), marks
# done what benchmarks/results already holds of STEM, trains ARMS (comma-
# separated) starting no trunk after DEADLINE_S, exports, and copies STEM's
# results to $OUT when it is set (the device tool brings $OUT back).
set -euo pipefail
config=$1 stem=$2 arms=$3 deadline=${4:-300}
cd "$(dirname "$0")/.."
if ! python3 -c "import ml_collections, grain" 2>/dev/null && [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl .whl/*.tar.gz
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
resume=()
if [ -f "benchmarks/results/$stem.json" ]; then
  resume=(--resume_from benchmarks/results)
fi
status=0
python3 -m growjax.study --config "$config" --workdir "/tmp/study_$stem" \
  --arms "$arms" --deadline_s "$deadline" "${resume[@]}" \
  --export benchmarks/results || status=$?
if [ -n "${OUT:-}" ] && [ -f "benchmarks/results/$stem.json" ]; then
  mkdir -p "$OUT/metrics"
  cp "benchmarks/results/$stem".* "$OUT/"
  cp -r "benchmarks/results/metrics/$stem" "$OUT/metrics/"
fi
exit $status
