#!/usr/bin/env bash
# The steps of a lease of the GPU machine, one device call each (README.md). The machine keeps /tmp
# only while warm, so the calls follow each other; each call runs in a fresh copy of the working tree,
# hence the copy of the tree in /tmp/lease/tree that background jobs run in.
#
# usage (from the checkout root, on the device): bash tools/lease/device.sh STEP [ARGS]
#   start [--suite]          clock, wheels (.gpu, .gpuk if carried), the tree copied to /tmp/lease/tree,
#                            parts in .lease stashed; --suite: GPU tests in the background (job "suite")
#   part                     stash the parts carried in .lease
#   unpack DEST              check the stashed parts against .lease/parts.sha256, unpack them into DEST
#   bg NAME COMMAND          run COMMAND (a bash string) in /tmp/lease/tree in the background:
#                            /tmp/lease/NAME.log, /tmp/lease/NAME.rc when it ends
#   wait SECONDS NAME...     until the jobs end or SECONDS pass; prints their state and last lines
#   remaining DEADLINE       DEADLINE minus the seconds since start (for a job's time budget)
set -uo pipefail
L=${LEASE_DIR:-/tmp/lease}     # LEASE_DIR: for tests
T=$L/tree
elapsed() { echo $(( $(date +%s) - $(cat $L/t0) )); }
stash() { mkdir -p $L/parts; for f in .lease/part_*; do [[ -e $f ]] && cp "$f" $L/parts/; done; ls -l $L/parts | tail -n +2; }
env_() { export PYTHONPATH=/tmp/site:$T PYTHONUNBUFFERED=1; }
step=${1:?step}; shift
case $step in
  start)
    mkdir -p $L && rm -f $L/*.rc && date +%s > $L/t0
    source .gpu/setup.sh || exit 1
    if compgen -G ".gpuk/*.whl" > /dev/null; then
      python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpuk/*.whl && echo "kernels installed"
    fi
    rm -rf $T && mkdir -p $T
    tar --exclude=./.gpuk --exclude=./.lease --exclude=./.gpu --exclude=./.git -cf - . | tar -C $T -xf -
    stash
    if [[ ${1:-} == --suite ]]; then
      bash "$0" bg suite "python3 -m pytest -q -rs tests/test_gpu.py tests/test_fast_paths.py"
    fi ;;
  part) stash; echo "t=$(elapsed)" ;;
  unpack)
    stash > /dev/null; dest=${1:?DEST}
    (cd $L/parts && cat part_* | sha256sum | cut -d' ' -f1) > $L/sum
    [[ $(cat $L/sum) == $(cut -d' ' -f1 .lease/parts.sha256) ]] || { echo "parts differ from parts.sha256"; exit 1; }
    mkdir -p "$dest" && cat $L/parts/part_* | tar -xf - -C "$dest" && rm -rf $L/parts && du -sh "$dest"/* ;;
  bg)
    name=${1:?NAME}; shift; rm -f $L/$name.rc; env_
    (cd $T && setsid nohup bash -c 'bash -c "$1"; echo $? > "$2"' job "$*" "$L/$name.rc" \
      > $L/$name.log 2>&1 < /dev/null &)
    echo "t=$(elapsed) started $name: $*" ;;
  wait)
    limit=${1:?SECONDS}; shift; t=$(date +%s)
    while (( $(date +%s) - t < limit )); do
      done_all=1; for n in "$@"; do [[ -f $L/$n.rc ]] || done_all=0; done
      (( done_all )) && break; sleep 5
    done
    for n in "$@"; do
      echo "== $n: rc=$(cat $L/$n.rc 2>/dev/null || echo running) (t=$(elapsed))"
      tail -c 1500 $L/$n.log | tr '\r' '\n' | tail -n 15
    done ;;
  remaining) echo $(( ${1:?DEADLINE} - $(elapsed) )) ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
