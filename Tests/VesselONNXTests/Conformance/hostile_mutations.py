"""Looks for inputs that crash or hang the native runtime: every ONNX backend node case, mutated.

Each node's integer attributes are set to 0, -1 and 2^62 in turn, each integer input is filled
with 0, -1, 2^62 and -2^62, each input loses its last dimension or has its first set to 0, and
float inputs are filled with NaN and 1e30. Every variant runs through `vessel run` in a process
of its own. A clean error (exit 1) or a result is fine; a signal (a trap: overflow, index out of
range, allocation failure) or a run past the time limit is a finding. Findings are printed and
written to OUT/findings.tsv; each one found became a regression test in HostileModelTests.

Usage (by hand; results in Benchmarks/RESULTS.md):
    python hostile_mutations.py CASES_DIR VESSEL_BINARY OUT_DIR [--jobs 2] [--filter SUBSTRING]
Replaying the variants that once crashed (hostile-findings.tsv beside this file: case, mutation),
which HostileModelTests runs in CI; exits 1 if any still crashes or hangs:
    python hostile_mutations.py CASES_DIR VESSEL_BINARY OUT_DIR --only hostile-findings.tsv
"""
import argparse
import concurrent.futures
import copy
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

BIG = 1 << 62


def attribute_variants(model):
    for n, node in enumerate(model.graph.node):
        for a, attribute in enumerate(node.attribute):
            if attribute.type == onnx.AttributeProto.INT:
                for value in (0, -1, BIG):
                    variant = copy.deepcopy(model)
                    variant.graph.node[n].attribute[a].i = value
                    yield f"{node.op_type}.{attribute.name}={value}", variant
            elif attribute.type == onnx.AttributeProto.INTS and len(attribute.ints):
                for value in (0, -1, BIG):
                    variant = copy.deepcopy(model)
                    del variant.graph.node[n].attribute[a].ints[:]
                    variant.graph.node[n].attribute[a].ints.extend([value] * len(attribute.ints))
                    yield f"{node.op_type}.{attribute.name}=[{value}]", variant
                variant = copy.deepcopy(model)
                del variant.graph.node[n].attribute[a].ints[:]
                yield f"{node.op_type}.{attribute.name}=[]", variant


def input_variants(inputs):
    """(label, index, new array) for each mutation of each input."""
    for k, array in enumerate(inputs):
        if array is None:
            continue
        if array.dtype.kind in "iu":
            for value in (0, -1, BIG, -BIG):
                if array.dtype.kind == "u" and value < 0:
                    continue
                info = np.iinfo(array.dtype)
                filled = np.full(array.shape, min(max(value, info.min), info.max), dtype=array.dtype)
                yield f"input{k}={value}", k, filled
        elif array.dtype.kind == "f":
            for value in (np.nan, 1e30):
                yield f"input{k}={value}", k, np.full(array.shape, value, dtype=array.dtype)
        if array.ndim >= 1:
            yield f"input{k}.rank-1", k, np.resize(array, array.shape[:-1]) if array.size else np.zeros(array.shape[:-1], dtype=array.dtype)
            yield f"input{k}.first=0", k, np.zeros((0,) + array.shape[1:], dtype=array.dtype)


def read_inputs(case):
    data = os.path.join(case, "test_data_set_0")
    arrays = []
    if not os.path.isdir(data):
        return arrays
    k = 0
    while os.path.exists(os.path.join(data, f"input_{k}.pb")):
        proto = onnx.TensorProto()
        with open(os.path.join(data, f"input_{k}.pb"), "rb") as f:
            try:
                proto.ParseFromString(f.read())
                arrays.append(numpy_helper.to_array(proto))
            except Exception:
                arrays.append(None)
        k += 1
    return arrays


def write_variant(directory, model, inputs):
    os.makedirs(directory, exist_ok=True)
    onnx.save(model, os.path.join(directory, "model.onnx"))
    names = [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    arguments = []
    for name, array in zip(names, inputs):
        if array is None:
            return None
        path = os.path.join(directory, f"{len(arguments)}.pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(array, name).SerializeToString())
        arguments += ["--input", f"{name}={path}"]
    return arguments


def run(vessel, directory, arguments, timeout):
    try:
        # vessel run's own --timeout stops a run whose work is data (a Loop's trip count); a
        # process still running at the harness's limit is a hang.
        result = subprocess.run([vessel, "run", os.path.join(directory, "model.onnx"), *arguments, "--output-dir", os.path.join(directory, "out"),
                                 "--timeout", str(timeout / 2)],
                                capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "hang", ""
    if result.returncode < 0 or result.returncode >= 128:
        tail = result.stderr.decode(errors="replace").strip().splitlines()
        return f"signal {-result.returncode if result.returncode < 0 else result.returncode - 128}", " | ".join(tail[:3])[:300]
    return None, ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cases")
    parser.add_argument("vessel")
    parser.add_argument("out")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--filter", default="")
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--only", help="a TSV of (case, mutation) rows: run just those variants")
    args = parser.parse_args()
    wanted = None
    if args.only:
        with open(args.only) as f:
            wanted = {tuple(line.rstrip("\n").split("\t")[:2]) for line in f if line.strip() and not line.startswith("#")}
    jobs = []
    seen = set()
    for name in sorted(os.listdir(args.cases)):
        case = os.path.join(args.cases, name)
        # Expanded cases are compositions of operators that have cases of their own.
        if args.filter not in name or (name.endswith("_expanded") and wanted is None) or not os.path.isfile(os.path.join(case, "model.onnx")):
            continue
        if wanted is not None and not any(row[0] == name for row in wanted):
            continue
        model = onnx.load(os.path.join(case, "model.onnx"))
        inputs = read_inputs(case)
        if any(i is None for i in inputs):
            continue
        # One variant per operator list, mutation and input dtypes: the many cases of one
        # operator mostly differ in values, not in what a mutation reaches.
        ops = tuple(n.op_type for n in model.graph.node)
        dtypes = tuple(str(i.dtype) for i in inputs)

        def fresh(label):
            if wanted is not None:
                return (name, label) in wanted
            key = (ops, dtypes, label)
            if key in seen:
                return False
            seen.add(key)
            return True
        for label, variant in attribute_variants(model):
            if fresh(label):
                jobs.append((name, label, variant, inputs))
        for label, k, array in input_variants(inputs):
            if fresh(label):
                changed = list(inputs)
                changed[k] = array
                jobs.append((name, label, model, changed))
    print(f"{len(jobs)} variants", flush=True)
    findings = []

    def one(index):
        name, label, model, inputs = jobs[index]
        directory = os.path.join(args.out, "v", str(index))
        arguments = write_variant(directory, model, inputs)
        if arguments is None:
            return None
        kind, detail = run(args.vessel, directory, arguments, args.timeout)
        if kind is None:
            subprocess.run(["rm", "-rf", directory])
            return None
        return f"{name}\t{label}\t{kind}\t{directory}\t{detail}"

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for k, finding in enumerate(pool.map(one, range(len(jobs)))):
            if finding:
                findings.append(finding)
                print(finding, flush=True)
            if k % 500 == 0:
                print(f"... {k}/{len(jobs)}", file=sys.stderr, flush=True)
    with open(os.path.join(args.out, "findings.tsv"), "w") as f:
        f.write("\n".join(findings) + "\n")
    print(f"{len(findings)} findings in {len(jobs)} variants")
    if wanted is not None:
        missing = wanted - {(name, label) for name, label, _, _ in jobs}
        if missing:
            print(f"{len(missing)} listed variants were not found among the cases: {sorted(missing)[:5]}")
        sys.exit(1 if findings or missing else 0)


if __name__ == "__main__":
    main()
