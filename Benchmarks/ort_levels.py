"""onnxruntime at two graph optimization levels, alternating: `extended` (every fusion, no layout
change) and `all` (adds the NCHWc layout transform and its channel-blocked kernels). How much of
onnxruntime's lead on a CNN is its layout. Run by hand after onnx-runtime.sh has prepared the
inputs; results go into Benchmarks/RESULTS.md.

    .build/venv-bench/bin/python Benchmarks/ort_levels.py MODEL INPUTS_JSON THREADS ITERATIONS ROUNDS
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def session(model, threads, level):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = {
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def main():
    model, inputs, threads, iterations, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    feeds = {name: np.load(path) for name, path in json.load(open(inputs)).items()}
    sessions = {level: session(model, threads, level) for level in ("extended", "all")}
    best = {level: (float("inf"), float("inf")) for level in sessions}
    for _ in range(rounds):
        for level, s in sessions.items():
            for _ in range(5):
                s.run(None, feeds)
            times = []
            for _ in range(iterations):
                start = time.perf_counter()
                s.run(None, feeds)
                times.append((time.perf_counter() - start) * 1000)
            times.sort()
            p50, low = times[len(times) // 2], times[0]
            best[level] = (min(best[level][0], p50), min(best[level][1], low))
    for level, (p50, low) in best.items():
        print(f"{level}: p50 {p50:.3f} ms, minimum {low:.3f} ms")


if __name__ == "__main__":
    main()
