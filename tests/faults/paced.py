"""``python paced.py pretrain ...``: the mimae command with a pause of 50 ms after each optimizer step.

A test that interrupts a run at a chosen step must find the run still going when it looks; on a fast machine the
tiny test run would otherwise be over first. The pause changes no computed value, so a paced run and a plain one
end with the same weights.
"""

import sys
import time

from mimae.cli import main
from mimae.engine import Trainer

PAUSE_SECONDS = 0.05
unpaced_step = Trainer.optimizer_step


def paced_step(self, micro_batches):
    result = unpaced_step(self, micro_batches)
    time.sleep(PAUSE_SECONDS)
    return result


Trainer.optimizer_step = paced_step
sys.exit(main(sys.argv[1:]))
