"""Where does the diagnosis pipeline lose the second core? The segment stage alone and with the
lung mask in a background thread; fp32 and int8; 1 and 2 threads. Prints one JSON row per mode and
thread count (results/diagnostics/pipeline_threads_probe.json holds a run of it).

    N=3 python scripts/probe_pipeline_threads.py fp32 int8
"""
import json, os, sys, tempfile, threading, time
from pathlib import Path
import numpy as np, torch
from jcs.bench import synthetic_volume, random_int8_segmenter
from jcs.data import volume_to_uint8
from jcs.diagnosis import DiagnosisPipeline

N = int(os.environ.get("N", 4))
vol = synthetic_volume(300, 512)
gray = volume_to_uint8(vol)
slices = torch.from_numpy(gray)
out = {}
def timeit(fn, reps=1):
    fn()  # warm
    t = []
    for _ in range(reps):
        s = time.perf_counter(); fn(); t.append(time.perf_counter() - s)
    return min(t)

modes = sys.argv[1:] or ["fp32", "int8"]
for mode in modes:
    if mode == "int8":
        tmp = tempfile.mkdtemp()
        prog = random_int8_segmenter(Path(tmp) / "s.pt2", 512)
        pipe = DiagnosisPipeline(segmenter=str(prog), precision="fp32")
    else:
        pipe = DiagnosisPipeline(precision="fp32")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        idx = list(range(N))
        seg = timeit(lambda: pipe.segment(slices, idx))
        cls = timeit(lambda: pipe.classify(slices[:32]))
        # lungs concurrently
        lt = {}
        def lungs():
            s = time.perf_counter(); pipe.lungs(vol, gray); lt["s"] = time.perf_counter() - s
        s = time.perf_counter(); pipe.lungs(vol, gray); lungs_alone = time.perf_counter() - s
        th = threading.Thread(target=lungs); 
        s = time.perf_counter(); th.start(); pipe.segment(slices, idx); seg_with = time.perf_counter() - s; th.join()
        row = dict(mode=mode, threads=threads, seg_per_slice=seg / N, cls_per_slice=cls / 32,
                   lungs_alone=lungs_alone, seg_per_slice_with_lungs=seg_with / N, lungs_in_bg=lt["s"])
        print(json.dumps(row), flush=True)
