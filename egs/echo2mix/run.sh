#!/usr/bin/env bash
# SPMamba on Echo2Mix (16 kHz, reverberant two-speaker separation; targets spk{1,2}_reverb) with the
# authors' configuration (JusperLee/SPMamba configs/spmamba-echo2mix.yml; see local/conf.yml).
# The eight-model comparison of the paper's table is in compare/ (compare/run.sh --help).
#
#   stage 0: check the downloaded Echo2Mix folder (--echo2mix_dir: train/ val/ test/) and link its
#            splits as $data_dir/{train,valid,test} (+ index.json)
#   stage 1: train (asteroid-spmamba train): PIT neg-SNR, Adam 1e-3, ReduceLROnPlateau(10, 0.5), early stop 20, 500 epochs
#   stage 2: evaluate on test (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi in $exp_root/<tag>/eval/
#
# Usage: ./run.sh --echo2mix_dir /data/Echo2Mix [--stage 0] [--stop_stage 2] [--tag spmamba]
#          [--id 0,1 (GPU ids)] [--gpus N] [--precision bf16-mixed|32-true] [--accumulate_grad_batches N]
#          [--batch_size N] [--max_epochs N] [--max_steps N] [--overrides "model.args.n_layers=2 data.segment=2"]
# Several GPUs train with DDP; bf16 mixed precision is the default on GPUs (as the authors), off on CPU.
set -euo pipefail
cd "$(dirname "$0")"
. ../common/utils.sh

# Dataset
echo2mix_dir=""                # downloaded Echo2Mix (holding train/ val/ test/)
sample_rate=16000
data_dir=data/echo2mix
set_common_defaults              # stage, stop_stage, tag, gpus, ... (../common/utils.sh)
parse_options "$COMMON_OPTIONS echo2mix_dir sample_rate" "$@"
setup_devices
exp_dir=$exp_root/$tag
data_args=(--set "data.root=\"$data_dir\"")

if stage_in 0; then
  begin_stage 0 "checking Echo2Mix in '$echo2mix_dir', split links in $data_dir"
  [[ -n "$echo2mix_dir" ]] || die "stage 0 needs --echo2mix_dir (the downloaded Echo2Mix folder); see local/prepare_data.py --help"
  "$python" local/prepare_data.py --echo2mix_dir "$echo2mix_dir" --out_dir "$data_dir" --sample_rate "$sample_rate"
  end_stage 0
fi
run_train_eval_stages
echo "run.sh finished in $SECONDS s"
