#!/usr/bin/env bash
# One lease of the per-GPU-minute comparison (README.md, "One GPU, one budget"): the corpus from a
# speech bank (reused when present), then stages 1-3 of run.sh for each of MODELS under
# local/budget.yml, and the results of each model without weights (scores, curves, timings, logs)
# packed into OUT_DIR. A model that runs out of GPU memory at batch 4 trains again at 2 x 2, then
# 1 x 4 (gradient accumulation: the same four mixtures per update, the same budget); one that does
# not fit even so is reported in not_trained.txt, and the lease goes on.
#
# Usage: local/budget_run.sh MODELS BANK_DIR REALDEV_DIR WORK_DIR OUT_DIR [run.sh options]
#   e.g. local/budget_run.sh spmamba,tfgridnet,bsrnn /tmp/k2m/bank16k_600 /tmp/k2m/realdev /tmp/k2m $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 5 ]] || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
models=$1 bank=$2 realdev=$3 work=$4 out=$5
shift 5
common=(--data synthetic --bank_dir "$bank" --n_train 3200 --n_valid 100 --n_test 100 --synthetic_duration 4
        --corpus_seed 0 --data_dir "$work/corpus" --conf local/budget.yml --gpus 1 --exp_root "$work/exp"
        --tag budget --progress_bar false
        --dev_dirs "real_reverb=$realdev/reverb real_anechoic=$realdev/anechoic" "$@")
./run.sh --stage 0 --stop_stage 0 --models "$models" "${common[@]}"
mkdir -p "$out" "$work/exp/budget"
# the same corpus in every lease: one fingerprint of all its audio, in the order of the file names
# (written whole, then renamed: budget_gpus.sh waits for it, and the queues of other GPUs rewrite it)
(cd "$work/corpus" && find . -name '*.wav' | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16) \
  > "$work/exp/budget/corpus.fingerprint.$$"
mv "$work/exp/budget/corpus.fingerprint.$$" "$work/exp/budget/corpus.fingerprint"
for model in ${models//,/ }; do
  log=$work/exp/budget/train_$model.log
  trained=false
  for split in "4 1" "2 2" "1 4"; do  # batch x accumulation: four mixtures per update
    set -- $split
    rm -rf "$work/exp/budget/$model"
    if ./run.sh --stage 1 --stop_stage 1 --models "$model" "${common[@]}" --batch_size "$1" \
         --accumulate_grad_batches "$2" 2>&1 | tee "$log.try"; then
      cat "$log.try" >> "$log"
      trained=true
      break
    fi
    cat "$log.try" >> "$log"
    grep -qi "out of memory" "$log.try" || { echo "budget_run.sh: training $model failed (see $log)" >&2; exit 1; }
    echo "budget_run.sh: $model ran out of GPU memory at batch $1 x $2" | tee -a "$log"
  done
  rm -f "$log.try"
  if [[ $trained == true ]]; then
    ./run.sh --stage 2 --stop_stage 3 --models "$model" "${common[@]}"
  else
    mkdir -p "$work/exp/budget/$model"
    echo "out of GPU memory at batch 1 (x 4)" > "$work/exp/budget/$model/not_trained.txt"
  fi
  tar -czf "$out/budget_$model.tgz" -C "$work/exp/budget" --exclude='*.pth' --exclude='*.ckpt' \
    --exclude='examples' "$model" "train_$model.log" corpus.fingerprint
done
ls -la "$out"
