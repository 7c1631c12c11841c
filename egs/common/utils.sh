# Helpers shared by the recipes' run.sh (sourced, not run):
#   set_common_defaults           defaults of $COMMON_OPTIONS (stage, stop_stage, tag, gpus, ...)
#   parse_options "$known" "$@"   set each variable named in $known from --name value (dashes or underscores)
#   stage_in N                    true when stage N is within --stage .. --stop_stage
#   begin_stage N TEXT / end_stage N
#   setup_devices                 --id (GPU ids, exported as CUDA_VISIBLE_DEVICES) and --gpus -> $gpus;
#                                 --precision defaults to bf16-mixed on GPUs (the authors'), 32-true on CPU
#   add_training_args             append the common training flags to the array train_args
# Every recipe defines the variables these functions read before calling them.

die() { echo "$(basename "$0"): $*" >&2; exit 2; }

recipe_usage() {
  # The comment block at the top of the script, without the shebang.
  sed -n '2,/^[^#]/p' "$1" | sed '$d' | sed 's/^# \{0,1\}//'
}

parse_options() {
  local known=" ${1//$'\n'/ } "
  shift
  local name
  while [[ $# -gt 0 ]]; do
    case "$1" in
      -h|--help) recipe_usage "$(basename "$0")"; exit 0 ;;  # run.sh cds to its folder first
      --*)
        name="${1#--}"; name="${name//-/_}"
        [[ "$known" == *" $name "* ]] || die "unknown option $1 (known:${known})"
        [[ $# -ge 2 ]] || die "option $1 needs a value"
        printf -v "$name" '%s' "$2"
        shift 2 ;;
      *) die "unexpected argument $1 (options look like --stage 1)" ;;
    esac
  done
}

stage_in() { [[ $stage -le $1 && $stop_stage -ge $1 ]]; }

stage_began=0
begin_stage() { echo; echo "=== Stage $1: $2 ==="; stage_began=$SECONDS; }
end_stage() { echo "=== Stage $1 done in $((SECONDS - stage_began)) s ==="; }

setup_devices() {
  if [[ -n "${id:-}" ]]; then
    export CUDA_VISIBLE_DEVICES="$id"
    local ids
    IFS=, read -r -a ids <<< "$id"
    [[ -n "${gpus:-}" ]] || gpus=${#ids[@]}
  fi
  gpus=${gpus:-0}
  [[ "$gpus" =~ ^[0-9]+$ ]] || die "--gpus must be a number of GPUs, got $gpus"
  if [[ -z "${precision:-}" ]]; then
    if [[ $gpus -gt 0 ]]; then precision=bf16-mixed; else precision=32-true; fi
  fi
  if [[ $gpus -eq 0 && "$precision" == bf16* ]]; then
    echo "note: bf16 mixed precision is a GPU option; training on CPU in 32-bit" >&2
    precision=32-true
  fi
}

add_training_args() {
  train_args+=(--gpus "$gpus" --precision "$precision")
  [[ -n "${accumulate_grad_batches:-}" ]] && train_args+=(--accumulate-grad-batches "$accumulate_grad_batches")
  [[ -n "${batch_size:-}" ]] && train_args+=(--batch-size "$batch_size")
  [[ -n "${max_epochs:-}" ]] && train_args+=(--max-epochs "$max_epochs")
  [[ -n "${max_steps:-}" ]] && train_args+=(--max-steps "$max_steps")
  [[ -n "${max_time:-}" ]] && train_args+=(--max-time "$max_time")
  [[ -n "${lr:-}" ]] && train_args+=(--lr "$lr")
  [[ -n "${seed:-}" ]] && train_args+=(--seed "$seed")
  [[ -n "${num_workers:-}" ]] && train_args+=(--set "training.num_workers=$num_workers")
  [[ "${progress_bar:-true}" == true ]] || train_args+=(--no-progress-bar)
  local item
  for item in ${overrides:-}; do
    train_args+=(--set "$item")
  done
  return 0
}

# Stages 1 (asteroid-spmamba train) and 2 (asteroid-spmamba evaluate) of the dataset recipes. Reads: python conf exp_dir data_args
# gpus precision n_save_examples progress_bar (+ the variables of add_training_args).
run_train_eval_stages() {
  if stage_in 1; then
    begin_stage 1 "training $conf into $exp_dir (gpus=$gpus, precision=$precision)"
    train_args=(--conf "$conf" --exp-dir "$exp_dir" "${data_args[@]}")
    add_training_args
    "$python" -m asteroid_spmamba train "${train_args[@]}"
    end_stage 1
  fi
  if stage_in 2; then
    begin_stage 2 "evaluating $exp_dir on its test split"
    local eval_args=(--n-save-examples "$n_save_examples" --compare-dir "$(dirname "$exp_dir")")
    [[ $gpus -gt 0 ]] && eval_args+=(--device cuda)
    [[ "$progress_bar" == true ]] || eval_args+=(--no-progress-bar)
    "$python" -m asteroid_spmamba evaluate "$exp_dir" "${eval_args[@]}"
    end_stage 2
  fi
  return 0
}

# Options every dataset recipe takes (besides its dataset folder), and their defaults: a recipe
# calls set_common_defaults, then sets its dataset options (including data_dir) and parses.
set_common_defaults() {
  stage=0
  stop_stage=2
  tag=spmamba
  id=""
  gpus=""
  precision=""
  accumulate_grad_batches=""
  batch_size=""
  max_epochs=""
  max_steps=""
  max_time=""
  lr=""
  seed=""
  num_workers=""                 # data loader workers (empty: the configuration's)
  overrides=""
  conf=local/conf.yml
  python=python
  exp_root=exp
  n_save_examples=0
  progress_bar=true
}
COMMON_OPTIONS="stage stop_stage tag id gpus precision accumulate_grad_batches batch_size max_epochs max_steps
max_time lr seed num_workers overrides conf python data_dir exp_root n_save_examples progress_bar"
