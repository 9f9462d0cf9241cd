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
                # One write: the server wakes once per answer.
                answers.write(b"".join((struct.pack("<IQ", len(head), len(payload)), head, payload)))

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
            send({"ok": True})

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
                except InputError as error:
                    send({"ok": False, "input_error": True, "error": str(error), "traceback": ""})
                    continue
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
                # PEP 440: `==1.2` leaves the local label open (1.2+cpu matches), `==1.2+cpu` does not.
                if (found if "+" in wanted else found.split("+")[0]).lower() != wanted.lower():
                    raise RuntimeError(f"requirement {requirement}, but the environment of {sys.executable} has {name} {found}")

        def load(config):
            directory = config["directory"]
            if directory == "/":
                # An image's model lies at the root, and CPython's cache_from_source indexes the
                # directory's second character when a pycache prefix is set (IndexError for "/").
                directory = "/."
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
                call = typed_call(method)
                def run(inputs):
                    return arrange(call(inputs), names)
                return run
            path = os.path.join(directory, config["file"])
            if config["kind"] == "mlflow":
                import mlflow.pyfunc
                model = mlflow.pyfunc.load_model(path)
                # A column-based MLflow signature takes a DataFrame, in its column order.
                schema = model.metadata.get_input_schema()
                columns = schema.input_names() if schema is not None and not schema.is_tensor_spec() else None
                def run(inputs):
                    if columns:
                        import pandas
                        data = pandas.DataFrame({name: inputs[name].reshape(-1) for name in columns})
                    elif len(inputs) == 1:
                        (data,) = inputs.values()
                    else:
                        data = inputs
                    return mlflow_outputs(model.predict(data), names)
                return run
            if config["kind"] == "savedmodel":
                import tensorflow as tf
                loaded = tf.saved_model.load(path)
                function = loaded.signatures.get("serving_default")
                if function is None:
                    raise RuntimeError(f"the SavedModel has no serving_default signature (it has {', '.join(loaded.signatures) or 'none'})")
                wanted = function.structured_input_signature[1]
                missing = [name for name in wanted if name not in config["inputs"]]
                if missing:
                    raise RuntimeError(f"the SavedModel's serving_default takes {', '.join(wanted)}; the signature lacks {', '.join(missing)}")
                def run(inputs):
                    tensors = {name: tf.constant(value, dtype=wanted[name].dtype) for name, value in inputs.items()}
                    return arrange({name: value.numpy() for name, value in function(**tensors).items()}, names)
                return run
            if config["kind"] == "keras":
                import keras
                model = keras.saving.load_model(path, compile=False)
                order = [tensor.name.split(":")[0] for tensor in model.inputs]
                def run(inputs):
                    if len(inputs) == 1:
                        (arguments,) = inputs.values()
                    else:
                        arguments = [inputs[name] for name in order]
                    result = model(arguments, training=False)
                    if isinstance(result, dict):
                        return arrange({name: value.numpy() if hasattr(value, "numpy") else value for name, value in result.items()}, names)
                    if isinstance(result, (list, tuple)):
                        return arrange(tuple(value.numpy() if hasattr(value, "numpy") else value for value in result), names)
                    return arrange(result.numpy() if hasattr(result, "numpy") else result, names)
                return run
            if config["kind"] == "torchscript":
                return load_torchscript(path, config["inputs"], names)
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
            if config.get("assume_finite") and "sklearn" in sys.modules:
                # The server has already refused NaN and infinity (serving.allow_nan is off), so
                # scikit-learn's own per-call scan of the input is skipped.
                import sklearn
                sklearn.set_config(assume_finite=True)
            methods = ["predict", "predict_proba"][: len(names)]
            for method in methods:
                if not callable(getattr(model, method, None)):
                    raise RuntimeError(f"the model ({type(model).__name__}) has no {method}(), which output `{names[methods.index(method)]}` needs")
            def run(inputs):
                (features,) = inputs.values()
                return {name: getattr(model, method)(features) for name, method in zip(names, methods)}
            return run

        def load_torchscript(path, declared, names):
            """A TorchScript module (torch.jit.save): forward() called under inference mode on the
            declared inputs — by keyword when they are forward's parameter names, else in the
            declared order — and its tensor, tuple/list or dict of tensors named by the outputs."""
            import numpy, torch
            model = torch.jit.load(path, map_location="cpu")
            model.eval()
            parameters = [argument.name for argument in model.forward.schema.arguments[1:]]
            required = [argument.name for argument in model.forward.schema.arguments[1:] if not argument.has_default_value()]
            by_name = all(name in parameters for name in declared)
            if by_name:
                missing = [name for name in required if name not in declared]
                if missing:
                    raise RuntimeError(f"the TorchScript forward() takes {', '.join(parameters)}; the signature lacks {', '.join(missing)}")
            elif not len(required) <= len(declared) <= len(parameters):
                raise RuntimeError(f"the TorchScript forward() takes {len(parameters)} inputs ({', '.join(parameters)}) "
                                   f"and the signature declares {len(declared)} ({', '.join(declared)})")
            def plain(value):
                if isinstance(value, torch.Tensor):
                    value = value.detach()
                    # NumPy has no bfloat16: widen it, the output's declared dtype then applies.
                    return (value.float() if value.dtype == torch.bfloat16 else value).numpy()
                if isinstance(value, dict):
                    return {key: plain(item) for key, item in value.items()}
                if isinstance(value, (list, tuple)):
                    return tuple(plain(item) for item in value)
                return value
            def run(inputs):
                # Request tensors are read-only views of the frame: torch wants writable memory.
                tensors = {name: torch.from_numpy(numpy.array(inputs[name])) for name in declared}
                with torch.inference_mode():
                    result = model(**tensors) if by_name else model(*(tensors[name] for name in declared))
                result = plain(result)
                if isinstance(result, tuple) and len(result) == 1 and len(names) == 1:
                    result = result[0]
                return arrange(result, names)
            return run

        def mlflow_outputs(result, names):
            """What a pyfunc predict returned (a DataFrame, Series, array, list or dict) by output name."""
            if isinstance(result, dict):
                return arrange(result, names)
            if hasattr(result, "columns"):
                if len(names) == 1 and len(result.columns) == 1:
                    return {names[0]: result.iloc[:, 0].to_numpy()}
                return {name: result[name].to_numpy() for name in names}
            if hasattr(result, "to_numpy"):
                result = result.to_numpy()
            return arrange(result, names)

        class InputError(ValueError):
            """A request input the predictor's declared type or constraints refuse: the client's to fix."""

        input_files = []

        def remove_input_files():
            while input_files:
                try:
                    os.unlink(input_files.pop())
                except OSError:
                    pass

        import atexit
        atexit.register(remove_input_files)

        def typed_call(method):
            """Calls predict() as Cog does: each parameter annotated float, int, bool, str, a Path or a
            File gets one Python value of that type (a Path: the bytes in a temporary file), a list
            annotation a list; a parameter left out gets its Input(default=...); Input's ge, le,
            choices, min_length, max_length and regex are checked first. Unannotated parameters get the
            NumPy arrays as they are."""
            import inspect, pathlib, io, re, tempfile
            parameters = inspect.signature(method).parameters
            takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())

            def field(param):
                default = param.default
                return default if hasattr(default, "ge") and hasattr(default, "default") else None

            def scalar(name, value):
                flat = value.reshape(-1)
                if flat.size != 1:
                    raise InputError(f"input `{name}` takes one value, got {flat.size}")
                item = flat[0]
                return item.item() if hasattr(item, "item") else item

            def convert(name, value, annotation):
                origin = getattr(annotation, "__origin__", None)
                if origin in (list, tuple) or annotation in (list, tuple):
                    args = getattr(annotation, "__args__", None) or (None,)
                    return [convert(name, item, args[0]) if args[0] is not None else item for item in value.reshape(-1)] \
                        if value.dtype == object else value.tolist()
                if not isinstance(annotation, type):
                    return value
                if issubclass(annotation, pathlib.PurePath) or annotation.__name__ in ("File", "URLFile"):
                    item = value if not hasattr(value, "reshape") else scalar(name, value)
                    data = item if isinstance(item, (bytes, bytearray)) else str(item).encode()
                    if annotation.__name__ in ("File",):
                        return io.BytesIO(data)
                    handle = tempfile.NamedTemporaryFile(delete=False, prefix="vessel-input-")
                    handle.write(data)
                    handle.close()
                    input_files.append(handle.name)
                    return annotation(handle.name)
                if annotation is bool or annotation is int or annotation is float:
                    item = scalar(name, value) if hasattr(value, "reshape") else value
                    return annotation(item)
                if annotation is str or annotation.__name__ == "Secret":
                    item = scalar(name, value) if hasattr(value, "reshape") else value
                    text = item.decode() if isinstance(item, (bytes, bytearray)) else str(item)
                    return annotation(text) if annotation is not str else text
                return value

            def check(name, value, spec):
                if spec is None:
                    return
                if spec.choices is not None and value not in spec.choices:
                    raise InputError(f"input `{name}` must be one of {spec.choices}, got {value!r}")
                if spec.ge is not None and value < spec.ge:
                    raise InputError(f"input `{name}` must be at least {spec.ge}, got {value}")
                if spec.le is not None and value > spec.le:
                    raise InputError(f"input `{name}` must be at most {spec.le}, got {value}")
                if isinstance(value, str):
                    if spec.min_length is not None and len(value) < spec.min_length:
                        raise InputError(f"input `{name}` must be at least {spec.min_length} characters long")
                    if spec.max_length is not None and len(value) > spec.max_length:
                        raise InputError(f"input `{name}` must be at most {spec.max_length} characters long")
                    if spec.regex is not None and not re.fullmatch(spec.regex, value):
                        raise InputError(f"input `{name}` must match {spec.regex}")

            def call(inputs):
                # The files the last request's path inputs were written to: kept until now, in
                # case its outputs pointed at them, then deleted, so requests do not fill /tmp.
                remove_input_files()
                arguments = {}
                for name, param in parameters.items():
                    if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                        continue
                    spec = field(param)
                    if name in inputs:
                        value = convert(name, inputs[name], param.annotation)
                        check(name, value, spec)
                        arguments[name] = value
                    elif spec is not None:
                        arguments[name] = spec.default
                if takes_any:
                    for name, value in inputs.items():
                        arguments.setdefault(name, value)
                return method(**arguments)
            return call

        def arrange(result, names):
            import types
            if isinstance(result, types.GeneratorType) or type(result).__name__.endswith("Iterator"):
                result = list(result)
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
            import pathlib
            for output in declared:
                name = output["name"]
                raw = outputs[name]
                if isinstance(raw, pathlib.PurePath) or (isinstance(raw, list) and raw and isinstance(raw[0], pathlib.PurePath)):
                    # A Path answer (Cog's file outputs): its bytes.
                    raw = [p.read_bytes() for p in raw] if isinstance(raw, list) else raw.read_bytes()
                value = np.asarray(raw, dtype=object) if isinstance(raw, (bytes, bytearray)) or (isinstance(raw, list) and raw and isinstance(raw[0], (bytes, str))) else np.asarray(raw)
                if value.ndim == 0:
                    # One value where the signature has a batch dimension of one.
                    value = value.reshape(1)
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
