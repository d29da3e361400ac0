"""Start N DDP processes of a command on this machine, as `torchrun --standalone` does.

`train.processes` in params.yaml: one per GPU, or 2 on a 2-core CPU, where one training process
with one thread leaves the second core idle (small convolutions gain little from a second thread).
Unlike torchrun, a worker's bad-input error stays one line and exit status 2.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys

import torch.distributed as dist
import torch.multiprocessing as mp

from pipeline.errors import InputError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """A killed launcher must not leave workers training on (Linux only; elsewhere a no-op)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(rank: int, fn, settings, args, world: int, port: int) -> None:
    _die_with_parent()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world))
    try:
        fn(settings, args)
    except InputError as error:
        if rank == 0:
            print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C reaches every rank; the launcher reports it once
        sys.exit(130)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def run_distributed(fn, settings, args, processes: int) -> int:
    """Run `fn(settings, args)` in `processes` processes (ranks 0..N-1): each receives the settings
    built by the launcher, none reads params.yaml again. The exit status of the first to fail, else 0."""
    # When one rank fails, torch stops the others with a warning per process: noise after a one-line error.
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    try:
        mp.start_processes(_worker, args=(fn, settings, args, processes, free_port()), nprocs=processes,
                           start_method="spawn")
    except mp.ProcessExitedException as error:
        code = error.exit_code or 1
        return code if code > 0 else 128 - code  # killed by a signal: as a shell reports it
    return 0
