#!/usr/bin/env bash
# The GPU path of polsess-tune, for a day a GPU is lent (under 8 minutes on one H200):
#   (e) the paper-size ConvTasNet (N=512 B=128 H=512 P=3 X=8 R=3, SB) training step on 4 s at 8 kHz,
#       batch 4: eager vs shifted depthwise convs vs torch.compile, fp32 and bf16: samples/s,
#       compile time and its payback, same score (targets: compiled >= 3x fp32 eager);
#   (c) the small demo model's search at --gpus-per-trial auto vs 1: trials/hour (target >= 3x).
# --all adds (a) fp32 vs bf16 and (b) the step inside a Ray Tune trial vs bare (about 4 more minutes).
# Without a GPU it says so, runs (e) on the CPU with a small model, and exits 0.
# Ends with one summary line per figure: `<figure>: <value> (target <target>)`.
#
#   bash benchmarks/gpu_check.sh             # (e) and (c)
#   bash benchmarks/gpu_check.sh --quick     # fewer timed steps; 2 trials of 1 epoch in (c)
#   bash benchmarks/gpu_check.sh --all       # (a), (b) as well
#   PYTHON=/opt/venv/bin/python bash benchmarks/gpu_check.sh   # default: .venv/bin/python, else python3
set -u

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
QUICK=()
ALL=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=(--quick) ;;
        --all) ALL=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument $arg (use --quick, --all or --help)" >&2; exit 2 ;;
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
    part "(e) eager vs shifted vs compiled step, fp32 and bf16" 270 --compile --blocks 3 --steps 10
    part "(c) demo-model search at --gpus-per-trial auto vs 1" 180 --search --packing auto --model small \
        --search-trials 8
    if [ $ALL -eq 1 ]; then
        part "(a) training step, fp32 vs bf16" 90
        part "(b) the step in a Ray Tune trial vs bare" 120 --in-tune
    fi
else
    echo "no GPU visible (torch.cuda.is_available() is False): the GPU figures need one;" \
         "running (e) on the CPU with a small model"
    part "(e) eager vs shifted vs compiled step (CPU)" 600 --compile
    echo "(e) compiled ÷ fp32 eager on the GPU: n/a, no GPU (target >= 3.0 on a GPU)" >>"$summary"
    echo "(c) trials/hour at --gpus-per-trial auto ÷ 1: n/a, no GPU (target >= 3.0 on a GPU)" >>"$summary"
fi

echo
echo "gpu_check: $((SECONDS - start_all)) s in all"
cat "$summary"
exit $failed
