"""One intra-op thread for these tiny models, restored afterwards.

With ~10 processes sharing 2 cores, OpenMP's second thread is often descheduled and every
tiny op waits for it: measured here, a 30k-parameter training step took ~1.2 s on 2 threads
and ~4 ms on 1.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
