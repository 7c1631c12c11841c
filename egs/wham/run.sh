#!/usr/bin/env bash
# SPMamba on WHAM! (8 kHz, min, noisy two-speaker separation: mix_both -> s1, s2) with the authors'
# configuration (JusperLee/SPMamba configs/spmamba-wham.yml; see local/conf.yml).
#
#   stage 0: check the generated WHAM! folder (--wham_dir) and write the json lists of
#            asteroid.data.WhamDataset in $data_dir/{tr,cv,tt}/{mix_both,s1,s2}.json
#   stage 1: train (asteroid-spmamba train): PIT neg-SNR, Adam 1e-3, ReduceLROnPlateau(10, 0.5), early stop 20, 500 epochs
#   stage 2: evaluate on tt (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi in $exp_root/<tag>/eval/
#
# Usage: ./run.sh --wham_dir /data/wham [--task sep_noisy|sep_clean] [--stage 0] [--stop_stage 2] [--tag spmamba]
#          [--id 0,1 (GPU ids)] [--gpus N] [--precision bf16-mixed|32-true] [--accumulate_grad_batches N]
#          [--batch_size N] [--max_epochs N] [--max_steps N] [--overrides "model.args.n_layers=2 data.segment=2"]
# Several GPUs train with DDP; bf16 mixed precision is the default on GPUs (as the authors), off on CPU.
set -euo pipefail
cd "$(dirname "$0")"
. ../common/utils.sh

# Dataset
wham_dir=""                    # generated WHAM! (holding wav8k/min/{tr,cv,tt})
task=sep_noisy                 # the authors' task; sep_clean is WSJ0-2mix
sample_rate=8000
mode=min
data_dir=data/wav8k/min
set_common_defaults              # stage, stop_stage, tag, gpus, ... (../common/utils.sh)
parse_options "$COMMON_OPTIONS wham_dir task sample_rate mode" "$@"
setup_devices
exp_dir=$exp_root/$tag
data_args=(--set "data.train_dir=\"$data_dir/tr\"" --set "data.valid_dir=\"$data_dir/cv\""
           --set "data.test_dir=\"$data_dir/tt\"" --set "data.task=$task")

if stage_in 0; then
  begin_stage 0 "checking WHAM! ($task) in '$wham_dir', lists in $data_dir"
  [[ -n "$wham_dir" ]] || die "stage 0 needs --wham_dir (the generated WHAM! folder); see local/prepare_data.py --help"
  "$python" local/prepare_data.py --wham_dir "$wham_dir" --out_dir "$data_dir" --task "$task" \
    --sample_rate "$sample_rate" --mode "$mode"
  end_stage 0
fi
run_train_eval_stages
echo "run.sh finished in $SECONDS s"
