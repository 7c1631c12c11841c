#!/usr/bin/env bash
# One GPU lease of egs/kokoro2mix (the flagship, local/flagship.yml, or the small model, local/conf.yml):
# the corpora of run 7 (3,200 + 100 + 100 mixtures of the --male-share 0.5 bank and 1,600 train
# mixtures of the shared bank, their train splits linked into one folder), training for what the
# lease has left, then the best weights in float16 (save_pretrained: the folder the next lease starts
# from and that ships) and the scores on the synthetic test split and on egs/realdev.
#
# usage: tools/lease/kokoro2mix_lease.sh WORK CONF TAG SECONDS [INIT_FROM]
#   WORK       holds bank16k/ (the shared bank), bank_m50/ and realdev/ (tools/lease/pack.sh parts);
#              the corpora, exp/TAG and out/TAG (what comes back) are written there
#   CONF       the recipe's configuration, e.g. egs/kokoro2mix/local/flagship.yml
#   SECONDS    wall time of the whole job: training gets it less the corpora and RESERVE_S
#   INIT_FROM  weights to start from (training.init_from): the previous lease's out/TAG folder
# environment: GPUS (1; 0 runs on the CPU), SIZES ("3200 100 100 1600": train/valid/test of bank_m50,
#   train of bank16k), BANKS ("bank_m50 bank16k": other folders of WORK in their places), RESERVE_S
#   (240: export and scoring), PYTHON (python3), OVERRIDES (more --set items), RUN_OPTIONS (more
#   run.sh options)
set -euo pipefail
[[ $# -ge 4 ]] || { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
work=$(realpath "$1") conf=$(realpath "$2") tag=$3 budget=$4 init=${5:-}
gpus=${GPUS:-1} reserve=${RESERVE_S:-240} python=${PYTHON:-python3}
read -r n_train n_valid n_test n_train_f <<< "${SIZES:-3200 100 100 1600}"
read -r bank_m bank_f <<< "${BANKS:-bank_m50 bank16k}"
device=cpu; ((gpus > 0)) && device=cuda
start=$SECONDS
cd "$(dirname "$0")/../../egs/kokoro2mix"
corpus() {  # OUT BANK TRAIN VALID TEST: the settings of run 7; skipped when already complete
  [[ -f $1/corpus.json ]] || "$python" -m asteroid_spmamba make-corpus "$1" --speech-bank "$2" \
    --n-train "$3" --n-valid "$4" --n-test "$5" --sample-rate 16000 --reverb --duration 4 --seed 0 \
    --anechoic-share 0.3 --rt60-max 0.8
}
corpus "$work/corpus_m" "$work/$bank_m" "$n_train" "$n_valid" "$n_test"
corpus "$work/corpus_f" "$work/$bank_f" "$n_train_f" 0 0
mkdir -p "$work/train"
ln -sfn "$work/corpus_m/train" "$work/train/m"
ln -sfn "$work/corpus_f/train" "$work/train/f"
max_time=$((budget - (SECONDS - start) - reserve))
((max_time > 60)) || { echo "kokoro2mix_lease.sh: $max_time s left to train, stopping" >&2; exit 1; }
echo "corpora ready after $((SECONDS - start)) s; training for $max_time s"
overrides="data.train_dir=$work/train ${OVERRIDES:-}"
[[ -n $init ]] && overrides+=" training.init_from=$(realpath "$init")"
# shellcheck disable=SC2086  # RUN_OPTIONS: words
./run.sh --stage 2 --stop_stage 2 --gpus "$gpus" --conf "$conf" --corpus_dir "$work/corpus_m" \
  --exp_root "$work/exp" --tag "$tag" --max_time "$max_time" --progress_bar false \
  --python "$python" --overrides "$overrides" ${RUN_OPTIONS:-}
exp=$work/exp/$tag out=$work/out/$tag
"$python" - "$exp/best_model.pth" "$out" <<'EOF'
import sys
from asteroid_spmamba import hub
from asteroid_spmamba.loading import load_model
hub.save_pretrained(load_model(sys.argv[1]).half(), sys.argv[2], asteroid_file=False)
EOF
for set in synthetic:"$work/corpus_m/test" real_reverb:"$work/realdev/reverb" \
  real_anechoic:"$work/realdev/anechoic"; do
  name=${set%%:*}
  "$python" -m asteroid_spmamba evaluate "$exp" --test-dir "${set#*:}" --out-dir "$exp/eval_$name" \
    --device "$device" --n-save-examples 0
  cp "$exp/eval_$name/metrics.csv" "$out/metrics_$name.csv"
  cp "$exp/eval_$name/summary.json" "$out/summary_$name.json"
done
cp "$exp/conf.yml" "$out/train_conf.yml"
cp "$exp/train_summary.json" "$out/"
echo "kokoro2mix_lease.sh: $out written after $((SECONDS - start)) s"
