#!/usr/bin/env bash
# The per-GPU-minute comparison (egs/echo2mix/compare, "One GPU, one budget") on a machine of N GPUs:
# one queue of models per GPU, each queue a local/budget_run.sh of its own that sees that GPU alone
# (CUDA_VISIBLE_DEVICES), so every model trains on one GPU by itself, as on a one-GPU machine. The
# models go to the GPUs in turn, in the order given (with 4 GPUs, GPU 0 trains the 1st and 5th).
# Queue 0 starts first and builds the corpus; the others start once it is there and reuse it.
# Logs: WORK_DIR/gpu<N>.log; results: OUT_DIR/budget_<model>.tgz (budget_run.sh). Exit status 1 if
# any queue failed (all are waited for).
#
# Usage: tools/lease/budget_gpus.sh N_GPUS MODELS BANK_DIR REALDEV_DIR WORK_DIR OUT_DIR [run.sh options]
#   e.g. tools/lease/budget_gpus.sh 8 spmamba,tfgridnet,bsrnn,tdanet,afrcnn,sudormrf,dprnn,convtasnet \
#          /tmp/k2m/bank16k /tmp/k2m/realdev /tmp/k2m /tmp/k2m/out --python python3
set -uo pipefail
[[ $# -ge 6 ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
budget_run=$(cd "$(dirname "$0")/../.." && pwd)/egs/echo2mix/compare/local/budget_run.sh
n=$1 models=$2
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "budget_gpus.sh: N_GPUS must be a positive number, got '$n'" >&2; exit 2; }
abs() { [[ -z "$1" ]] || realpath -m "$1"; }  # budget_run.sh works in the recipe's folder
paths=("$(abs "$3")" "$(abs "$4")" "$(abs "$5")" "$(abs "$6")")  # BANK REALDEV WORK OUT
work=${paths[2]}
shift 6
options=("$@")
# the GPUs: the first N of CUDA_VISIBLE_DEVICES where it is set, else 0 .. N-1
if [[ -n "${CUDA_VISIBLE_DEVICES:-}" ]]; then IFS=, read -ra visible <<< "$CUDA_VISIBLE_DEVICES"; else visible=(); fi
IFS=, read -ra list <<< "$models"
(( n <= ${#list[@]} )) || n=${#list[@]}
(( ${#visible[@]} == 0 || ${#visible[@]} >= n )) \
  || { echo "budget_gpus.sh: CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES names fewer than $n GPUs" >&2; exit 2; }
gpu=() queue=()
for g in $(seq 0 $((n - 1))); do gpu[g]=${visible[g]:-$g}; done
for i in "${!list[@]}"; do queue[i % n]+=${queue[i % n]:+,}${list[i]}; done

mkdir -p "$work"
fingerprint=$work/exp/budget/corpus.fingerprint  # budget_run.sh writes it once the corpus is ready
rm -f "$fingerprint"
pids=()
start() {  # queue g in the background
  echo "GPU ${gpu[$1]}: ${queue[$1]} (log $work/gpu$1.log)"
  CUDA_VISIBLE_DEVICES=${gpu[$1]} bash "$budget_run" "${queue[$1]}" "${paths[@]}" "${options[@]}" \
    > "$work/gpu$1.log" 2>&1 &
  pids[$1]=$!
}
start 0
while [[ ! -s "$fingerprint" ]] && kill -0 "${pids[0]}" 2> /dev/null; do sleep 2; done
if [[ ! -s "$fingerprint" ]]; then  # queue 0 ended before its corpus was ready
  wait "${pids[0]}"
  echo "budget_gpus.sh: queue 0 failed before the corpus was ready (exit $?); the others were not started:" >&2
  tail -n 20 "$work/gpu0.log" >&2
  exit 1
fi
for g in $(seq 1 $((n - 1))); do start "$g"; done
failed=0
for g in "${!pids[@]}"; do
  wait "${pids[g]}"; rc=$?
  echo "GPU ${gpu[g]}: ${queue[g]}: exit $rc"
  (( rc == 0 )) || { failed=1; tail -n 20 "$work/gpu$g.log"; }
done
exit $failed
