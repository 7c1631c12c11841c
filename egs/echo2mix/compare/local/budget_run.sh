#!/usr/bin/env bash
# One lease of the per-GPU-minute comparison (README.md, "One GPU, one budget"): the corpus from a
# speech bank (reused when present), then stages 0-3 of run.sh for MODELS under local/budget.yml, and
# the results of each model without weights (scores, curves, timings, logs) packed into OUT_DIR.
#
# Usage: local/budget_run.sh MODELS BANK_DIR REALDEV_DIR WORK_DIR OUT_DIR [run.sh options]
#   e.g. local/budget_run.sh spmamba,tfgridnet,bsrnn /tmp/k2m/bank16k_600 /tmp/k2m/realdev /tmp/k2m $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 5 ]] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
models=$1 bank=$2 realdev=$3 work=$4 out=$5
shift 5
./run.sh --stop_stage 3 --data synthetic --bank_dir "$bank" --n_train 3200 --n_valid 100 --n_test 100 \
  --synthetic_duration 4 --corpus_seed 0 --data_dir "$work/corpus" --conf local/budget.yml --gpus 1 \
  --exp_root "$work/exp" --tag budget --progress_bar false --models "$models" \
  --dev_dirs "real_reverb=$realdev/reverb real_anechoic=$realdev/anechoic" "$@"
# the same corpus in every lease: one fingerprint of all its audio, in the order of the file names
(cd "$work/corpus" && find . -name '*.wav' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) > "$work/exp/budget/corpus.fingerprint"
mkdir -p "$out"
for model in ${models//,/ }; do
  tar -czf "$out/budget_$model.tgz" -C "$work/exp/budget" --exclude='*.pth' --exclude='*.ckpt' \
    --exclude='examples' "$model" corpus.fingerprint
done
ls -la "$out"
