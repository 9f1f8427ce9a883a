"""Several batches in flight on the CPU ("streams"): how :func:`jcs.inference.predict` turns the
torch threads into throughput.

One stream runs one batch at a time with all torch threads working inside each operator (intra-op
parallelism: every convolution splits its work over the threads and waits for the slowest at its
end). ``S`` streams run ``S`` batches at once from a pool of Python threads, each batch with
``threads // S`` intra-op threads: fewer synchronisation points per slice, the same cores. The
operators release the GIL, so the streams run in parallel.

Measured before choosing the default (``scripts/probe_cpu_streams.py`` →
``results/diagnostics/cpu_streams_probe.json``; 2-core AMD EPYC Zen 3, AVX2, idle; ``jcs-seg`` at
512² as the diagnosis pipeline runs it: BN folded, channels-last, fp32, batch 1; 4 interleaved
rounds of 4 slices per layout): 2 streams × 1 thread took a median 4.20 s per slice against
4.43 s for 1 stream × 2 threads with the pipeline's :func:`jcs.inference.keep_freed_memory`
(4.58 against 4.82 s with glibc's default heap), faster in 6 of the 8 paired rounds. But the same
layout varied by up to 15 % between rounds, a one-pass probe before it found one stream 10 %
faster (3.88 against 4.29 s), and ``jcs bench --scaling`` on the whole segment stage found one
stream 4 % faster (0.242 against 0.232 slices/s at 2 threads). A gain of about 5 % inside that
spread does not justify doubling the activation memory, so the default stays **one stream**
(:data:`DEFAULT_STREAMS`). Machines with many cores were not available to measure: there, where
one operator's threads wait on each other more, several streams may pay; ``jcs diagnose
--streams N`` tries it and ``jcs bench --scaling --streams N`` measures it.

Streams apply to eager models on the CPU. A ``torch.compile``'d model or an int8 program runs one
stream (their concurrent use is not measured or tested), as does every CUDA device (one CUDA
stream already overlaps the host).
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import torch

__all__ = ["DEFAULT_STREAMS", "resolve_streams", "intra_op_threads", "run_streams"]

T = TypeVar("T")
DEFAULT_STREAMS = 1  # measured on 2 cores (see the module docstring)


def resolve_streams(streams: Optional[int], device: torch.device) -> int:
    """``streams`` (``None`` = :data:`DEFAULT_STREAMS`), checked: at least 1, and 1 on a non-CPU
    device. Raises ValueError for a value below 1 or above 1 off the CPU."""
    if streams is None:
        return DEFAULT_STREAMS
    streams = int(streams)
    if streams < 1:
        raise ValueError(f"streams must be at least 1, not {streams}")
    if streams > 1 and device.type != "cpu":
        raise ValueError(f"several streams (here {streams}) run on the CPU only, not on {device}; "
                         "drop --streams")
    return streams


@contextlib.contextmanager
def intra_op_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` for the block, the previous count restored after it
    (process-wide: the threads a pool starts inside the block take this count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_streams(work: Callable[[Tuple[int, int]], T], spans: Sequence[Tuple[int, int]],
                streams: int) -> List[T]:
    """``[work(span) for span in spans]`` with up to ``streams`` spans in flight, results in the
    order of ``spans``. With ``streams > 1`` (and more than one span) the torch threads are split
    evenly between the streams for the call (at least 1 each; the count is restored after) and
    each worker sets that count for itself. Thread-local state (``torch.inference_mode``,
    autocast) does not cross into the workers: ``work`` enters it itself. An exception of
    ``work`` is raised here."""
    streams = max(1, min(int(streams), len(spans)))
    if streams == 1:
        return [work(span) for span in spans]
    per_stream = max(1, torch.get_num_threads() // streams)

    def job(span: Tuple[int, int]) -> T:
        torch.set_num_threads(per_stream)  # this worker's own OpenMP team size
        return work(span)

    with intra_op_threads(per_stream), ThreadPoolExecutor(streams, thread_name_prefix="jcs-stream") as pool:
        return list(pool.map(job, spans))
