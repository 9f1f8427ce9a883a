"""Several batches in flight on the CPU ("streams"): how :func:`jcs.inference.predict` turns the
torch threads into throughput.

One stream runs one batch at a time with all torch threads working inside each operator (intra-op
parallelism: every convolution splits its work over the threads and waits for the slowest at its
end). ``S`` streams run ``S`` batches at once from a pool of Python threads, each batch with
``threads // S`` intra-op threads: fewer synchronisation points per slice, the same cores. The
operators release the GIL, so the streams run in parallel.

Measured before choosing the default (``scripts/probe_cpu_streams.py`` →
``results/diagnostics/cpu_streams_probe.json``; 2-core AMD EPYC VM, AVX2, otherwise idle; ``jcs-seg`` at
512² as the diagnosis pipeline runs it: BN folded, channels-last, fp32, batch 1; 4 interleaved
rounds of 4 slices per layout): 2 streams × 1 thread took a median 4.20 s per slice against
4.43 s for 1 stream × 2 threads with the pipeline's :func:`jcs.inference.keep_freed_memory`
(4.58 against 4.82 s with glibc's default heap), faster in 6 of the 8 paired rounds. But one
layout varied by up to 14 % between its own rounds (22 % with the default heap): a gain of about
5 % inside that spread does not justify doubling the activation memory, so the default stays
**one stream** (:data:`DEFAULT_STREAMS`). Machines with many cores were not available to measure: there, where
one operator's threads wait on each other more, several streams may pay; ``jcs diagnose
--streams N`` tries it and ``jcs bench --scaling --streams N`` measures it.

Streams apply to eager models on the CPU: asking for several with ``torch.compile`` or on CUDA
is an error (their concurrent use is not measured or tested; on CUDA one stream already overlaps
the host), and an int8 segmenter runs one stream while the classifier runs the streams asked for.
A stream never gets less than one thread: :func:`effective_streams` caps the streams by the
threads and by the batches there are.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import torch

__all__ = ["DEFAULT_STREAMS", "resolve_streams", "effective_streams", "intra_op_threads", "run_streams"]

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


def effective_streams(streams: int, n_batches: int, threads: Optional[int] = None) -> int:
    """The streams :func:`run_streams` really runs: ``streams`` capped by the number of batches
    and by the torch threads (``threads``, default ``torch.get_num_threads()``: one stream per
    thread at most, so a layout never uses more cores than the thread count says); at least 1."""
    threads = torch.get_num_threads() if threads is None else int(threads)
    return max(1, min(int(streams), int(n_batches), threads))


def run_streams(work: Callable[[Tuple[int, int]], T], spans: Sequence[Tuple[int, int]],
                streams: int) -> List[T]:
    """``[work(span) for span in spans]`` with up to :func:`effective_streams` spans in flight,
    results in the order of ``spans``. With more than one stream the torch threads are split
    evenly between the streams for the call (``threads // streams`` each; the count is restored
    after) and each worker sets that count for itself. Thread-local state
    (``torch.inference_mode``, autocast) does not cross into the workers: ``work`` enters it
    itself. The first exception of ``work`` (in span order) is raised here; batches not started
    yet are cancelled, so an error or Ctrl-C does not wait for the whole volume."""
    streams = effective_streams(streams, len(spans))
    if streams == 1:
        return [work(span) for span in spans]
    per_stream = max(1, torch.get_num_threads() // streams)

    def job(span: Tuple[int, int]) -> T:
        torch.set_num_threads(per_stream)  # this worker's own OpenMP team size
        return work(span)

    with intra_op_threads(per_stream):
        pool = ThreadPoolExecutor(streams, thread_name_prefix="jcs-stream")
        try:
            futures = [pool.submit(job, span) for span in spans]
            return [future.result() for future in futures]
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
