#!/usr/bin/env bash
# The GPU path of polsess-tune, for a day a GPU is lent (about 4 minutes on one H100):
#   (a) a paper-size ConvTasNet (N=512 B=128 H=512 P=3 X=8 R=3, SB) training step on 4 s at 8 kHz,
#       batch 4: fp32 vs bf16 autocast, samples/s and peak memory;
#   (b) the same step inside a one-trial Ray Tune run vs a bare loop (target >= 0.95);
#   (c) a short `polsess-tune run` at --gpus-per-trial 0.25 (4 trials share the GPU) vs 1: trials/hour.
# Without a GPU it says so, runs (b) on the CPU with a small model and 1 s segments, and exits 0.
# Ends with one summary line per figure: `<figure>: <value> (target <target>)`.
#
#   bash benchmarks/gpu_check.sh             # all parts
#   bash benchmarks/gpu_check.sh --quick     # fewer timed steps; 2 trials of 1 epoch in (c)
#   PYTHON=/opt/venv/bin/python bash benchmarks/gpu_check.sh   # default: .venv/bin/python, else python3
set -u

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
QUICK=()
for arg in "$@"; do
    case $arg in
        --quick) QUICK=(--quick) ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument $arg (use --quick or --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.." || exit 2
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# The repository on the path, so this runs from a checkout without `pip install -e .` too.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
failed=0
start_all=$SECONDS

part() {  # part NAME LIMIT_S ARGS...: one gpu_step.py run under a time limit; a failure is a summary line
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name ($(date +%H:%M:%S), limit ${limit} s)"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=20 "$limit" "$PYTHON" benchmarks/gpu_step.py "${QUICK[@]}" \
        --summary-file "$summary" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    if [ $rc -ne 0 ]; then
        failed=1
        echo "$name: FAILED, exit $rc$([ $rc -eq 124 ] && echo ', over its time limit') (target: runs)" >>"$summary"
    fi
}

echo "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), nproc $(nproc), python $PYTHON"
if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
    part "(a) training step, fp32 vs bf16" 90
    part "(b) the step in a Ray Tune trial vs bare" 120 --in-tune
    part "(c) search at --gpus-per-trial 0.25 vs 1" 200 --search
else
    echo "no GPU visible (torch.cuda.is_available() is False): (a) and (c) need one;" \
         "running (b) on the CPU with a small model"
    part "(b) the step in a Ray Tune trial vs bare (CPU)" 600 --in-tune
    echo "(a) fp32 vs bf16 step: n/a, no GPU (target: run on a GPU)" >>"$summary"
    echo "(c) trials/hour at --gpus-per-trial 0.25 vs 1: n/a, no GPU (target: run on a GPU)" >>"$summary"
fi

echo
echo "gpu_check: $((SECONDS - start_all)) s in all"
cat "$summary"
exit $failed
