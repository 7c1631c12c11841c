#!/usr/bin/env bash
# Mini recipe: SPMamba on a synthetic two-speaker corpus (eSpeak NG voices, 8 kHz, no reverb),
# small enough to run end to end on a laptop CPU.
#
#   first (with stage 0): a shipped model separates a bundled real recording (asteroid-spmamba demo), SI-SNRi printed
#   stage 0: generate the corpus (asteroid-spmamba make-corpus)
#   stage 1: train (asteroid-spmamba train, configuration local/conf.yml or local/conf_<model>.yml)
#   stage 2: evaluate on the test split (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi; compare with the other
#            experiments and the stored figures of local/reference_results.yml (Conv-TasNet)
#   stage 3: separate one test mixture (asteroid-spmamba separate) and print where the wavs are
#
# Usage: ./run.sh [--stage N] [--stop_stage N] [--tag NAME] [--model spmamba|convtasnet] [...]
# Every variable below can be set with --name value (dashes or underscores); relative paths are taken
# from this folder (egs/mini).
set -euo pipefail

# General
stage=0
stop_stage=3
model=spmamba          # spmamba -> local/conf.yml, convtasnet -> local/conf_convtasnet.yml
conf=""                # explicit configuration file (overrides --model)
tag=""                 # experiment folder <exp_root>/<tag> (default: the model name)
exp_root=exp
python=python          # interpreter with asteroid_spmamba installed
threads=2              # torch threads per process (OMP_NUM_THREADS); empty: torch's default. On the
                       # 2-core development machine a training step took 89 ms with 2, about 150 ms with 1.

# Corpus (stage 0)
corpus_dir=data/corpus
n_train=600
n_valid=20
n_test=50
seed=0
random_voices=0       # probability of a random eSpeak NG voice variant per train/valid voice (make-corpus --random-voices)

# Training (stage 1); empty: the value of the configuration
gpus=0
precision=""
max_epochs=""
max_steps=""
max_time=""
batch_size=""
limit_train_batches=""
progress_bar=true

# Evaluation (stage 2)
n_save_examples=3
demo=true             # first separate the bundled real recording with the shipped model (before stage 0)

known="stage stop_stage model conf tag exp_root python threads corpus_dir n_train n_valid n_test seed random_voices gpus precision max_epochs
max_steps max_time batch_size limit_train_batches progress_bar n_save_examples demo"
cd "$(dirname "$0")"
. ../common/utils.sh
parse_options "$known" "$@"

if [[ -n "$threads" ]]; then
  export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
fi
if [[ -z "$conf" ]]; then
  case "$model" in
    spmamba) conf=local/conf.yml ;;
    *) conf=local/conf_${model}.yml ;;
  esac
fi
[[ -f "$conf" ]] || die "configuration $conf not found (--model spmamba|convtasnet, or --conf FILE)"
tag=${tag:-$model}
exp_dir=$exp_root/$tag
mkdir -p "$exp_root"

if [[ "$demo" == true ]] && stage_in 0; then
  # What a trained model does on real speech, before this recipe trains one on synthetic speech
  "$python" -m asteroid_spmamba demo --out-dir "$exp_root/real_demo" --device cpu
fi

if stage_in 0; then
  begin_stage 0 "synthetic corpus in $corpus_dir ($n_train/$n_valid/$n_test mixtures, 8 kHz)"
  # An existing corpus with the same parameters is reused as it is.
  "$python" -m asteroid_spmamba make-corpus "$corpus_dir" --n-train "$n_train" --n-valid "$n_valid" \
    --n-test "$n_test" --sample-rate 8000 --seed "$seed" --random-voices "$random_voices"
  end_stage 0
fi

if stage_in 1; then
  begin_stage 1 "training $conf into $exp_dir"
  args=(--conf "$conf" --exp-dir "$exp_dir" --corpus "$corpus_dir" --gpus "$gpus")
  [[ -n "$precision" ]] && args+=(--precision "$precision")
  [[ -n "$max_epochs" ]] && args+=(--max-epochs "$max_epochs")
  [[ -n "$max_steps" ]] && args+=(--max-steps "$max_steps")
  [[ -n "$max_time" ]] && args+=(--max-time "$max_time")
  [[ -n "$batch_size" ]] && args+=(--batch-size "$batch_size")
  [[ -n "$limit_train_batches" ]] && args+=(--set "training.limit_train_batches=$limit_train_batches")
  [[ "$progress_bar" == true ]] || args+=(--no-progress-bar)
  "$python" -m asteroid_spmamba train "${args[@]}"
  end_stage 1
fi

if stage_in 2; then
  begin_stage 2 "evaluating $exp_dir on $corpus_dir/test"
  args=(--test-dir "$corpus_dir/test" --n-save-examples "$n_save_examples" --compare-dir "$exp_root"
        --reference local/reference_results.yml)
  [[ "$progress_bar" == true ]] || args+=(--no-progress-bar)
  [[ "$gpus" -gt 0 ]] && args+=(--device cuda)
  "$python" -m asteroid_spmamba evaluate "$exp_dir" "${args[@]}"
  end_stage 2
fi

if stage_in 3; then
  begin_stage 3 "separating one test mixture with $exp_dir/best_model.pth"
  first=$(find "$corpus_dir/test" -name mix.wav | sort | head -n 1)
  [[ -n "$first" ]] || die "no test mixture under $corpus_dir/test (run stage 0)"
  utt=$(basename "$(dirname "$first")")
  out=$exp_dir/separate/$utt
  mkdir -p "$out"
  "$python" -m asteroid_spmamba separate "$exp_dir/best_model.pth" "$first" --out-dir "$out" -q
  echo "Mixture:   $first"
  echo "Estimates: $(ls "$out"/*.wav | tr '\n' ' ')"
  echo "References: $(dirname "$first")/spk1_reverb.wav $(dirname "$first")/spk2_reverb.wav"
  end_stage 3
fi
echo
echo "run.sh finished in $SECONDS s"
