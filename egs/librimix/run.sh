#!/usr/bin/env bash
# SPMamba on Libri2Mix (8 kHz, min, clean two-speaker separation, trained on train-100) with the
# authors' configuration (JusperLee/SPMamba configs/spmamba-librimix.yml; see local/conf.yml).
#
#   stage 0: check the generated Libri2Mix folder (--librimix_dir) and write the CSVs of
#            asteroid.data.LibriMix in $data_dir/{train-100,dev,test}/mixture_<split>_mix_clean.csv
#   stage 1: train (asteroid-spmamba train): PIT neg-SNR, Adam 1e-3, ReduceLROnPlateau(10, 0.5), early stop 20, 500 epochs
#   stage 2: evaluate on test (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi in $exp_root/<tag>/eval/
#
# Usage: ./run.sh --librimix_dir /data/Libri2Mix [--task sep_clean|sep_noisy] [--train_set train-100|train-360]
#          [--stage 0] [--stop_stage 2] [--tag spmamba] [--id 0,1 (GPU ids)] [--gpus N]
#          [--precision bf16-mixed|32-true] [--accumulate_grad_batches N] [--batch_size N] [--max_epochs N]
#          [--max_steps N] [--overrides "model.args.n_layers=2 data.segment=2"]
# Several GPUs train with DDP; bf16 mixed precision is the default on GPUs (as the authors), off on CPU.
set -euo pipefail
cd "$(dirname "$0")"
. ../common/utils.sh

# Dataset
librimix_dir=""                # generated Libri2Mix (holding wav8k/min/{train-100,dev,test})
task=sep_clean                 # the authors' task
train_set=train-100            # the authors' training set (Asteroid's recipes use train-360)
sample_rate=8000
mode=min
data_dir=data/wav8k/min
set_common_defaults              # stage, stop_stage, tag, gpus, ... (../common/utils.sh)
parse_options "$COMMON_OPTIONS librimix_dir task train_set sample_rate mode" "$@"
setup_devices
exp_dir=$exp_root/$tag
data_args=(--set "data.train_dir=\"$data_dir/$train_set\"" --set "data.valid_dir=\"$data_dir/dev\""
           --set "data.test_dir=\"$data_dir/test\"" --set "data.task=$task")

if stage_in 0; then
  begin_stage 0 "checking Libri2Mix ($task) in '$librimix_dir', CSVs in $data_dir"
  [[ -n "$librimix_dir" ]] || die "stage 0 needs --librimix_dir (the generated Libri2Mix folder); see local/prepare_data.py --help"
  "$python" local/prepare_data.py --librimix_dir "$librimix_dir" --out_dir "$data_dir" --task "$task" \
    --sample_rate "$sample_rate" --mode "$mode" --splits "$train_set" dev test
  end_stage 0
fi
run_train_eval_stages
echo "run.sh finished in $SECONDS s"
