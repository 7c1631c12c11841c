#!/usr/bin/env bash
# SPMamba on WSJ0-2mix (8 kHz, min, clean two-speaker separation) with the authors' configuration
# (JusperLee/SPMamba configs/spmamba-wsj0.yml; see local/conf.yml).
#
#   stage 0: check the generated WSJ0-2mix folder (--wsj0mix_dir) and write the json lists of
#            asteroid.data.Wsj0mixDataset in $data_dir/{tr,cv,tt}/{mix,s1,s2}.json
#   stage 1: train (asteroid-spmamba train): PIT neg-SNR, Adam 1e-3, ReduceLROnPlateau(10, 0.5), early stop 20, 500 epochs
#   stage 2: evaluate on tt (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi in $exp_root/<tag>/eval/
#
# Usage: ./run.sh --wsj0mix_dir /data/wsj0-mix [--stage 0] [--stop_stage 2] [--tag spmamba]
#          [--id 0,1 (GPU ids)] [--gpus N] [--precision bf16-mixed|32-true] [--accumulate_grad_batches N]
#          [--batch_size N] [--max_epochs N] [--max_steps N] [--overrides "model.args.n_layers=2 data.segment=2"]
# Several GPUs train with DDP; bf16 mixed precision is the default on GPUs (as the authors), off on CPU.
set -euo pipefail
cd "$(dirname "$0")"
. ../common/utils.sh

# Dataset
wsj0mix_dir=""                 # generated wsj0-mix (holding 2speakers/wav8k/min/{tr,cv,tt})
sample_rate=8000
mode=min
data_dir=data/2speakers/wav8k/min
set_common_defaults              # stage, stop_stage, tag, gpus, ... (../common/utils.sh)
parse_options "$COMMON_OPTIONS wsj0mix_dir sample_rate mode" "$@"
setup_devices
exp_dir=$exp_root/$tag
data_args=(--set "data.train_dir=\"$data_dir/tr\"" --set "data.valid_dir=\"$data_dir/cv\""
           --set "data.test_dir=\"$data_dir/tt\"")

if stage_in 0; then
  begin_stage 0 "checking WSJ0-2mix in '$wsj0mix_dir', lists in $data_dir"
  [[ -n "$wsj0mix_dir" ]] || die "stage 0 needs --wsj0mix_dir (the generated wsj0-mix folder); see local/prepare_data.py --help"
  "$python" local/prepare_data.py --wsj0mix_dir "$wsj0mix_dir" --out_dir "$data_dir" --n_src 2 \
    --sample_rate "$sample_rate" --mode "$mode"
  end_stage 0
fi
run_train_eval_stages
echo "run.sh finished in $SECONDS s"
