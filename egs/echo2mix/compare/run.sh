#!/usr/bin/env bash
# The SPMamba paper's Echo2Mix table, rebuilt: the eight models (Conv-TasNet, DPRNN, SudoRM-RF,
# A-FRCNN, TDANet, BSRNN, TF-GridNet, SPMamba) trained with the same data, segment, optimiser,
# schedule, epochs and seed (local/conf.yml), each model's configuration from asteroid_spmamba.zoo.
#
#   stage 0: data: --data echo2mix checks --echo2mix_dir and links its splits (../local/prepare_data.py);
#            --data synthetic generates the synthetic reverberant corpus (asteroid-spmamba make-corpus;
#            from a speech bank with --bank_dir, e.g. egs/kokoro2mix's Kokoro speakers)
#   stage 1: train every model of --models (asteroid_spmamba.commands.compare train) into $exp_root/<tag>/<model>
#   stage 2: evaluate every model on the test split (asteroid-spmamba evaluate): SDR, SDRi, SI-SNR, SI-SNRi;
#            with --dev_dirs also on those dev sets, and its training snapshots too (the learning curve)
#   stage 3: measure every model (asteroid_spmamba.commands.compare bench): Params, MACs/s, inference real-time
#            factor and peak memory, training step time and peak memory
#   stage 4: collect the table (asteroid_spmamba.commands.compare collect): results.md, results.csv, results.png
#            and learning_curves.png in $exp_root/<tag>/results
#
# Usage: ./run.sh [--models all|spmamba,tfgridnet,...] [--size full|small|tiny] [--data echo2mix|synthetic]
#          [--echo2mix_dir DIR] [--stage 0] [--stop_stage 4] [--tag NAME] [--id 0,1] [--gpus N]
#          [--precision bf16-mixed|32-true] [--accumulate_grad_batches N] [--max_epochs N] [--max_steps N]
#          [--max_time SECONDS] [--segment S] [--batch_size N] [--seed N] [--conf local/budget.yml]
#          [--bank_dir DIR] [--dev_dirs "real_reverb=DIR real_anechoic=DIR"]
# CPU smoke run:  ./run.sh --data synthetic --size tiny --models spmamba,convtasnet --max_epochs 2
# Several GPUs train with DDP; bf16 mixed precision is the default on GPUs (as the authors), off on CPU.
set -euo pipefail
cd "$(dirname "$0")"
. ../../common/utils.sh

# Models
models=all                     # comma-separated zoo names, or all (the paper's eight)
size=full                      # full (the paper's configurations), small or tiny (CPU runs)
# Data
data=echo2mix                  # echo2mix or synthetic
echo2mix_dir=""                # downloaded Echo2Mix (train/ val/ test/), for --data echo2mix
data_dir=""                    # prepared corpus (default: data/echo2mix or data/synthetic_<rate>)
sample_rate=16000
segment=""                     # training excerpt (s); empty: local/conf.yml (3.0)
n_train=400                    # synthetic corpus: mixtures per split
n_valid=40
n_test=40
synthetic_duration=3.0         # synthetic mixture length (s)
synthetic_reverb=true          # reverberant rooms like Echo2Mix (needs pyroomacoustics)
bank_dir=""                    # synthetic corpus from this speech bank (asteroid-spmamba make-speech-bank)
corpus_seed=0
dev_dirs=""                    # NAME=FOLDER pairs scored in stage 2 (egs/realdev's real-speech sets)
# General: the dataset recipes' options and defaults (set_common_defaults), except these
set_common_defaults
stop_stage=4
tag=""                         # default: <data>_<size>
# (--max_time applies per model, in seconds)
bench_seconds=4.0              # length of the benchmark mixture

parse_options "$COMMON_OPTIONS models size data echo2mix_dir sample_rate segment n_train n_valid n_test
synthetic_duration synthetic_reverb bank_dir corpus_seed dev_dirs bench_seconds" "$@"
setup_devices
case "$data" in
  echo2mix) data_dir=${data_dir:-data/echo2mix} ;;
  synthetic) data_dir=${data_dir:-data/synthetic_${sample_rate}} ;;
  *) die "--data must be echo2mix or synthetic, got $data" ;;
esac
case "$size" in full|small|tiny) ;; *) die "--size must be full, small or tiny, got $size" ;; esac
model_list=$("$python" -c "import sys; from asteroid_spmamba.recipes.compare import parse_models
try: print(' '.join(parse_models(sys.argv[1])))
except ValueError as e: sys.exit(f'error: {e}')" "$models")
tag=${tag:-${data}_${size}}
exp_dir_root=$exp_root/$tag
eval_device=cpu
[[ $gpus -gt 0 ]] && eval_device=cuda
echo "Models: $model_list (size $size), data: $data in $data_dir, experiments: $exp_dir_root"

if stage_in 0; then
  if [[ "$data" == echo2mix ]]; then
    begin_stage 0 "checking Echo2Mix in '$echo2mix_dir', split links in $data_dir"
    [[ -n "$echo2mix_dir" ]] || die "stage 0 with --data echo2mix needs --echo2mix_dir (or --data synthetic)"
    "$python" ../local/prepare_data.py --echo2mix_dir "$echo2mix_dir" --out_dir "$data_dir" --sample_rate "$sample_rate"
  else
    begin_stage 0 "synthetic corpus in $data_dir ($n_train/$n_valid/$n_test mixtures, $sample_rate Hz)"
    corpus_args=(--n-train "$n_train" --n-valid "$n_valid" --n-test "$n_test" --sample-rate "$sample_rate"
                 --duration "$synthetic_duration" --seed "$corpus_seed")
    [[ "$synthetic_reverb" == true ]] && corpus_args+=(--reverb)
    [[ -n "$bank_dir" ]] && corpus_args+=(--speech-bank "$bank_dir")
    # An existing corpus with the same parameters is reused as it is.
    "$python" -m asteroid_spmamba make-corpus "$data_dir" "${corpus_args[@]}"
  fi
  end_stage 0
fi

data_args=(--set "data.root=\"$data_dir\"" --set "data.sample_rate=$sample_rate" --set "data.dataset=$data")
[[ -n "$segment" ]] && data_args+=(--set "data.segment=$segment")

if stage_in 1; then
  for model in $model_list; do
    begin_stage 1 "training $model ($size) into $exp_dir_root/$model (gpus=$gpus, precision=$precision)"
    train_args=(--model "$model" --size "$size" --conf "$conf" --exp-dir "$exp_dir_root/$model" "${data_args[@]}")
    add_training_args
    "$python" -m asteroid_spmamba.commands.compare train "${train_args[@]}"
    end_stage 1
  done
fi

if stage_in 2; then
  for model in $model_list; do
    begin_stage 2 "evaluating $model on $data_dir/test"
    eval_args=(--device "$eval_device" --n-save-examples "$n_save_examples")
    [[ "$progress_bar" == true ]] || eval_args+=(--no-progress-bar)
    "$python" -m asteroid_spmamba evaluate "$exp_dir_root/$model" "${eval_args[@]}"
    if [[ -n "$dev_dirs" ]]; then
      "$python" -m asteroid_spmamba.commands.compare dev "$exp_dir_root/$model" --dev "$dev_dirs" --device "$eval_device"
    fi
    end_stage 2
  done
fi

if stage_in 3; then
  for model in $model_list; do
    begin_stage 3 "measuring $model: params, MACs, real-time factor, peak memory ($eval_device)"
    "$python" -m asteroid_spmamba.commands.compare bench "$exp_dir_root/$model" --seconds "$bench_seconds" --device "$eval_device"
    end_stage 3
  done
fi

if stage_in 4; then
  begin_stage 4 "collecting the table in $exp_dir_root/results"
  "$python" -m asteroid_spmamba.commands.compare collect "$exp_dir_root" --models "${model_list// /,}" \
    --title "Echo2Mix comparison: data $data ($sample_rate Hz), model size $size" \
    --note "Same data, segment, batch, optimiser, schedule, budget and seed for every model ($conf)." \
    --note "MACs per second of audio (1 s input); RTF and peak memory: ${bench_seconds} s mixture, batch 1, on $eval_device; training step and its memory: the run's batch, excerpt and precision." \
    --note "Train s/epoch marked ~ is the run's wall time over the epochs done (validation and start-up included)."
  end_stage 4
fi
echo "run.sh finished in $SECONDS s"
