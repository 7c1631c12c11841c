"""``python tests/train_and_kill.py CONF.json EXP_DIR [--kill-after STEP] [--plateau-threshold X]``:
train (asteroid_spmamba.training.train). With ``--kill-after``, the process kills itself with
SIGKILL right after that optimizer step, as an out-of-memory killer or a lost machine would: nothing
is flushed or saved on the way out. ``--plateau-threshold`` sets ReduceLROnPlateau's relative
threshold (10: no validation counts as an improvement, so the rate drops after every epoch past the
patience)."""

import argparse
import json
import os
import signal

import pytorch_lightning as pl
import torch

from asteroid_spmamba import training


class _KillAfterStep(pl.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("conf")
    parser.add_argument("exp_dir")
    parser.add_argument("--kill-after", type=int)
    parser.add_argument("--plateau-threshold", type=float)
    args = parser.parse_args()
    if args.kill_after is not None:
        killer, init = _KillAfterStep(args.kill_after), pl.Trainer.__init__

        def with_killer(self, *a, callbacks=None, **kwargs):
            init(self, *a, callbacks=[*(callbacks or []), killer], **kwargs)

        pl.Trainer.__init__ = with_killer
    if args.plateau_threshold is not None:
        plateau_init = torch.optim.lr_scheduler.ReduceLROnPlateau.__init__

        def with_threshold(self, *a, **kwargs):
            plateau_init(self, *a, **{**kwargs, "threshold": args.plateau_threshold})

        torch.optim.lr_scheduler.ReduceLROnPlateau.__init__ = with_threshold
    training.train(json.loads(open(args.conf).read()), args.exp_dir)


if __name__ == "__main__":
    main()
