/// The program each Python worker runs (`python -c`), so no file of Vessel's has to be installed
/// beside the interpreter. It loads the model once, then answers frames until its request pipe
/// closes.
///
/// A frame, both ways: a little-endian `UInt32` header length, a `UInt64` payload length, the
/// header (JSON), the payload. A request's header lists its tensors (`name`, `dtype`, `shape`,
/// `nbytes`) and the payload holds their bytes back to back: little-endian elements for numbers,
/// and for BYTES each element as a kind byte (0 text, 1 binary), a `UInt32` length and its bytes.
/// An answer is the same with `"ok": true`, or `"ok": false` with `error` and `traceback`.
/// The first frame a worker sends says whether it loaded.
///
/// The pipes are file descriptors 3 (requests) and 4 (answers): whatever the model's code prints
/// goes to the server's log (fd 1 is pointed at fd 2) and can never corrupt the protocol.
enum WorkerScript {
    static let source = #"""
import sys, os, struct, json, traceback

def main():
    rfd, wfd, config = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    os.dup2(2, 1)
    # Never outlive the server, even while stuck in the model's code. (PR_SET_PDEATHSIG would
    # fire when the server thread that started this worker exits, not the server.)
    import threading, time
    parent = os.getppid()
    def watch_parent():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch_parent, daemon=True).start()
    requests = os.fdopen(rfd, "rb", buffering=0)
    answers = os.fdopen(wfd, "wb", buffering=0)

    def send(header, payload=b""):
        head = json.dumps(header).encode()
        answers.write(struct.pack("<IQ", len(head), len(payload)) + head)
        if payload:
            answers.write(payload)

    def read_exactly(count):
        buffer = bytearray(count)
        view, done = memoryview(buffer), 0
        while done < count:
            n = requests.readinto(view[done:])
            if not n:
                return None
            done += n
        return buffer

    try:
        run = load(config)
    except BaseException as error:
        send({"ok": False, "error": describe(error), "traceback": traceback.format_exc()})
        return
    send({"ok": True, "pid": os.getpid(), "python": sys.version.split()[0]})

    import numpy as np
    while True:
        head = read_exactly(12)
        if head is None:
            return
        header_length, payload_length = struct.unpack("<IQ", head)
        header = json.loads(bytes(read_exactly(header_length)))
        payload = read_exactly(payload_length) if payload_length else bytearray()
        try:
            inputs = decode(np, header["tensors"], payload)
            outputs = run(inputs)
            tensors, blob = encode(np, outputs, config["outputs"])
        except Exception as error:
            send({"ok": False, "error": describe(error), "traceback": traceback.format_exc()})
            continue
        send({"ok": True, "tensors": tensors}, blob)

def describe(error):
    text = str(error)
    return type(error).__name__ + (": " + text if text else "")

def check_requirements(requirements):
    from importlib import metadata
    import re
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(?:;.*)?", requirement)
        if not match:
            continue
        name, wanted = match.group(1), match.group(2)
        try:
            found = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(f"requirement {requirement} is not installed in the environment of {sys.executable}")
        if found != wanted:
            raise RuntimeError(f"requirement {requirement}, but the environment of {sys.executable} has {name} {found}")

def load(config):
    directory = config["directory"]
    os.chdir(directory)
    sys.path.insert(0, directory)
    wanted = config.get("python")
    if wanted:
        running = ".".join(map(str, sys.version_info[:3]))
        if running != wanted and not running.startswith(wanted + "."):
            raise RuntimeError(f"runtime.python is {wanted}, but {sys.executable} is Python {running}")
    check_requirements(config["requirements"])
    try:
        import numpy
    except ImportError:
        raise RuntimeError("the python backend hands the model NumPy arrays: add numpy to runtime.requirements")
    names = [output["name"] for output in config["outputs"]]
    if config["kind"] == "predictor":
        import importlib.util
        path, _, class_name = config["predictor"].rpartition(":")
        spec = importlib.util.spec_from_file_location("vessel_predictor", os.path.join(directory, path))
        module = importlib.util.module_from_spec(spec)
        sys.modules["vessel_predictor"] = module
        spec.loader.exec_module(module)
        predictor = getattr(module, class_name)()
        if hasattr(predictor, "setup"):
            predictor.setup()
        method = getattr(predictor, "predict", None) or getattr(predictor, "run", None)
        if method is None:
            raise RuntimeError(f"{config['predictor']} has neither predict() nor run()")
        def run(inputs):
            return arrange(method(**inputs), names)
        return run
    path = os.path.join(directory, config["file"])
    if config["kind"] == "joblib":
        import joblib
        model = joblib.load(path)
    elif config["kind"] == "skops":
        import skops.io
        untrusted = [t for t in skops.io.get_untrusted_types(file=path) if t not in config["trusted"]]
        if untrusted:
            raise RuntimeError(f"{config['file']} holds types skops does not trust by default: {', '.join(untrusted)}; "
                               "list the ones you trust in runtime.trusted_types")
        model = skops.io.load(path, trusted=config["trusted"] or None)
    else:
        import pickle
        with open(path, "rb") as file:
            model = pickle.load(file)
    methods = ["predict", "predict_proba"][: len(names)]
    for method in methods:
        if not callable(getattr(model, method, None)):
            raise RuntimeError(f"the model ({type(model).__name__}) has no {method}(), which output `{names[methods.index(method)]}` needs")
    def run(inputs):
        (features,) = inputs.values()
        return {name: getattr(model, method)(features) for name, method in zip(names, methods)}
    return run

def arrange(result, names):
    if isinstance(result, dict):
        missing = [name for name in names if name not in result]
        if missing:
            raise RuntimeError(f"predict() returned no {', '.join(missing)} (it returned {', '.join(map(str, result)) or 'nothing'})")
        return result
    if len(names) == 1:
        return {names[0]: result}
    if isinstance(result, tuple) and len(result) == len(names):
        return dict(zip(names, result))
    raise RuntimeError(f"predict() must return a dict with {', '.join(names)} or a tuple of {len(names)} values")

def decode(np, specs, payload):
    inputs, offset = {}, 0
    view = memoryview(payload)
    for spec in specs:
        shape, size = spec["shape"], spec["nbytes"]
        if spec["dtype"] == "string":
            count = 1
            for dim in shape:
                count *= dim
            items, at = [], offset
            for _ in range(count):
                kind, length = struct.unpack_from("<BI", payload, at)
                raw = bytes(view[at + 5 : at + 5 + length])
                items.append(raw if kind else raw.decode())
                at += 5 + length
            array = np.empty(count, dtype=object)
            array[:] = items
            inputs[spec["name"]] = array.reshape(shape)
        else:
            dtype = np.dtype(spec["dtype"]).newbyteorder("<")
            inputs[spec["name"]] = np.frombuffer(view[offset : offset + size], dtype=dtype).reshape(shape)
        offset += size
    return inputs

def encode(np, outputs, declared):
    tensors, parts = [], []
    for output in declared:
        name = output["name"]
        value = np.asarray(outputs[name])
        if output["dtype"] == "string":
            flat = value.reshape(-1)
            chunks = []
            for item in flat:
                if isinstance(item, (bytes, bytearray, np.bytes_)):
                    raw, kind = bytes(item), 1
                else:
                    raw, kind = str(item).encode(), 0
                chunks.append(struct.pack("<BI", kind, len(raw)) + raw)
            blob = b"".join(chunks)
        else:
            if value.dtype.kind in "OUS":
                raise RuntimeError(f"output `{name}` is declared {output['dtype']} but the model returned {value.dtype} values")
            value = np.ascontiguousarray(value.astype(np.dtype(output["dtype"]).newbyteorder("<"), copy=False))
            blob = value.tobytes()
        tensors.append({"name": name, "dtype": output["dtype"], "shape": list(value.shape), "nbytes": len(blob)})
        parts.append(blob)
    return tensors, b"".join(parts)

main()
"""#
}
