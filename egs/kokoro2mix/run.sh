#!/usr/bin/env bash
# SPMamba on reverberant 16 kHz mixtures of synthetic speakers (Kokoro-82M neural TTS), scored on
# real recordings (the real-speech dev set of egs/realdev). Needs: pip install "asteroid-spmamba[tts]".
#
#   stage 0: speech bank: utterances of new Kokoro speakers (asteroid-spmamba make-speech-bank; slow:
#            about twice real time per CPU core, resumable)
#   stage 1: corpus: reverberant two-speaker mixtures of the bank (make-corpus --speech-bank --reverb)
#   stage 2: train (asteroid-spmamba train, local/conf.yml: one GPU, bf16, dynamic mixing)
#   stage 3: evaluate on the corpus' test split and on the real-speech dev set (--real_dev_dir)
#
# Usage: ./run.sh [--stage N] [--stop_stage N] [--tag NAME] [--gpus 1] [--real_dev_dir DIR] [...]
# Every variable below can be set with --name value (dashes or underscores).
set -euo pipefail
cd "$(dirname "$0")"
. ../common/utils.sh

bank_dir=data/bank16k
train_speakers=100
valid_speakers=8
test_speakers=10
utterances=6
bank_workers=""               # empty: every core
male_share=""                 # share of men among the speakers, e.g. 0.5; empty: earlier banks' draw (mostly women)
corpus_dir=data/corpus
n_train=1200
n_valid=100
n_test=100
corpus_seed=0
anechoic_share=0              # share of dry mixtures (no room, dry targets) among the reverberant ones
rt60_max=0.6                  # rooms' RT60 drawn in [0.2, rt60_max] s
level_spread_db=5             # speaker 1's level relative to speaker 2's in [-x, x] dB
real_dev_dir=""               # egs/realdev output (anechoic/ and reverb/); empty: skipped
set_common_defaults           # stage, stop_stage, tag, gpus, ... (../common/utils.sh)
stop_stage=3
gpus=1
parse_options "$COMMON_OPTIONS bank_dir train_speakers valid_speakers test_speakers utterances bank_workers
male_share corpus_dir n_train n_valid n_test corpus_seed anechoic_share rt60_max level_spread_db real_dev_dir" "$@"
setup_devices
exp_dir=$exp_root/$tag
device=cpu; [[ $gpus -gt 0 ]] && device=cuda

if stage_in 0; then
  begin_stage 0 "speech bank in $bank_dir ($train_speakers/$valid_speakers/$test_speakers speakers x $utterances)"
  args=(--train-speakers "$train_speakers" --valid-speakers "$valid_speakers" --test-speakers "$test_speakers"
        --utterances "$utterances" --voices kokoro --sample-rate 16000)
  [[ -n "$bank_workers" ]] && args+=(--workers "$bank_workers")
  [[ -n "$male_share" ]] && args+=(--male-share "$male_share")
  "$python" -m asteroid_spmamba make-speech-bank "$bank_dir" "${args[@]}"
  end_stage 0
fi
if stage_in 1; then
  begin_stage 1 "reverberant corpus in $corpus_dir ($n_train/$n_valid/$n_test mixtures of 4 s)"
  "$python" -m asteroid_spmamba make-corpus "$corpus_dir" --speech-bank "$bank_dir" --n-train "$n_train" \
    --n-valid "$n_valid" --n-test "$n_test" --sample-rate 16000 --reverb --duration 4 --seed "$corpus_seed" \
    --anechoic-share "$anechoic_share" --rt60-max "$rt60_max" --level-spread-db "$level_spread_db"
  end_stage 1
fi
if stage_in 2; then
  begin_stage 2 "training $conf into $exp_dir (gpus=$gpus, precision=$precision)"
  train_args=(--conf "$conf" --exp-dir "$exp_dir" --corpus "$corpus_dir")
  add_training_args
  "$python" -m asteroid_spmamba train "${train_args[@]}"
  end_stage 2
fi
if stage_in 3; then
  begin_stage 3 "evaluating $exp_dir"
  eval_args=(--device "$device" --n-save-examples "$n_save_examples")
  [[ "$progress_bar" == true ]] || eval_args+=(--no-progress-bar)
  "$python" -m asteroid_spmamba evaluate "$exp_dir" --test-dir "$corpus_dir/test" \
    --out-dir "$exp_dir/eval_synthetic" "${eval_args[@]}"
  if [[ -n "$real_dev_dir" ]]; then
    for condition in anechoic reverb; do
      "$python" -m asteroid_spmamba evaluate "$exp_dir" --test-dir "$real_dev_dir/$condition" \
        --out-dir "$exp_dir/eval_real_$condition" "${eval_args[@]}"
    done
  fi
  end_stage 3
fi
echo "run.sh finished in $SECONDS s"
