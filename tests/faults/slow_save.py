"""``python slow_save.py MARKER pretrain ...``: the mimae command whose second checkpoint write stalls half-way.

The write puts the first bytes of the checkpoint in the temporary file, creates MARKER and sleeps, so that a test
can kill the process with SIGKILL in the middle of a save.
"""

import sys
import time
from pathlib import Path

import torch

import mimae.checkpoint
from mimae.cli import main

marker = Path(sys.argv[1])
saves = 0
real_save = torch.save


def stalling_save(obj, fh, *args, **kwargs):
    global saves
    saves += 1
    if saves < 2:
        return real_save(obj, fh, *args, **kwargs)
    fh.write(b"PK\x03\x04 half a checkpoint")
    fh.flush()
    marker.touch()
    time.sleep(600)


mimae.checkpoint.torch.save = stalling_save
sys.exit(main(sys.argv[2:]))
