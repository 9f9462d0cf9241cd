import RealModule
import VesselManifest
import VesselTensor

/// One step of a plan: the tensor it reads, the one it writes, and its typed operation.
struct CompiledStep: Sendable {
    enum Operation: Sendable {
        case cast(DType)
        case normalize(mean: [Double], std: [Double], axis: Int)
        case scale(factor: Double, offset: Double)
        case clip(min: Double?, max: Double?)
        case transpose([Int])
        case softmax(axis: Int)
        case sigmoid
        case argmax(axis: Int)
        case topk(k: Int, axis: Int)
        case labels(file: String, names: [String]?)
        case threshold(Double)
        case image(ImageSpec)
        case columns([Column])
        case tokenize(TokenizeSpec)
        case pool(PoolSpec)
        case detections(DetectionSpec)
        /// `rename` (to `as`) and `drop`: which outputs clients get, under which names.
        case rename
        case drop
    }

    /// One column of a `columns` step: a number, or a category encoded one-hot or as its index.
    struct Column: Sendable {
        var name: String
        var categories: [String]?
        var onehot: Bool
        var fill: Double?
        var fillCategory: String?
        var features: Int { onehot ? categories?.count ?? 1 : 1 }
    }

    let stage: ProcessingError.Stage
    let index: Int
    let type: String
    /// The tensor the step reads (`input:` or `output:`).
    let tensor: String
    /// The tensor it writes: `as:`, else the one it read.
    let result: String
    /// Top-k's second output, its scores: `<result>_scores`.
    var scoresName: String?
    var operation: Operation
    /// For `labels` on class scores: how many classes the model's output has, when fixed.
    var classes: Int?
    /// For `columns`: the dtype of the tensor it assembles (set when the plan compiles).
    var assembledDType: DType = .float32

    func error(_ message: String) -> ProcessingError {
        ProcessingError(stage: stage, index: index, type: type, message: message)
    }

    init(_ step: ProcessingStep, stage: ProcessingError.Stage, index: Int) throws(ProcessingError) {
        self.stage = stage
        self.index = index
        type = step.type
        let parameters = step.parameters
        let key = stage == .pre ? "input" : "output"
        let failure = { (message: String) in ProcessingError(stage: stage, index: index, type: step.type, message: message) }
        guard case .string(let tensor)? = parameters[key] else { throw failure("needs `\(key)`, the tensor it works on") }
        self.tensor = tensor
        if case .string(let alias)? = parameters["as"] {
            guard stage == .post else { throw failure("`as` is for postprocess steps") }
            result = alias
        } else {
            result = tensor
        }
        func number(_ name: String) -> Double? {
            switch parameters[name] {
            case .double(let value)?: value
            case .int(let value)?: Double(value)
            default: nil
            }
        }
        func numbers(_ name: String) -> [Double]? {
            switch parameters[name] {
            case .array(let items)?:
                let values = items.compactMap { item -> Double? in
                    if case .double(let value) = item { return value }
                    if case .int(let value) = item { return Double(value) }
                    return nil
                }
                return values.count == items.count ? values : nil
            case .double(let value)?: return [value]
            case .int(let value)?: return [Double(value)]
            default: return nil
            }
        }
        func integer(_ name: String) -> Int? { if case .int(let value)? = parameters[name] { value } else { nil } }
        let postOnly = ["softmax", "sigmoid", "argmax", "topk", "labels", "threshold", "pool", "rename", "drop", "detections"]
        if stage == .pre, postOnly.contains(step.type) { throw failure("is a postprocess step") }
        if stage == .post, ["normalize", "transpose", "reshape", "image", "tokenize"].contains(step.type) { throw failure("is a preprocess step") }
        switch step.type {
        case "cast":
            guard case .string(let raw)? = parameters["dtype"], let dtype = DType(rawValue: raw) else { throw failure("needs `dtype`") }
            guard dtype != .string else { throw failure("cannot cast to string") }
            operation = .cast(dtype)
        case "normalize":
            guard let mean = numbers("mean"), let std = numbers("std"), !mean.isEmpty, !std.isEmpty else {
                throw failure("needs `mean` and `std`, numbers or lists of numbers")
            }
            guard mean.count == std.count || mean.count == 1 || std.count == 1 else {
                throw failure("`mean` has \(mean.count) values and `std` \(std.count); give one each, or one per channel")
            }
            guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
                throw failure("`std` must be finite and non-zero, `mean` finite")
            }
            operation = .normalize(mean: mean, std: std, axis: integer("axis") ?? 1)
        case "scale":
            guard let factor = number("factor"), factor.isFinite else { throw failure("needs a finite `factor`") }
            operation = .scale(factor: factor, offset: number("offset") ?? 0)
        case "clip":
            let low = number("min"), high = number("max")
            guard low != nil || high != nil else { throw failure("needs `min`, `max` or both") }
            if let low, let high, low > high { throw failure("`min` (\(low)) is above `max` (\(high))") }
            operation = .clip(min: low, max: high)
        case "transpose":
            guard case .array(let items)? = parameters["perm"] else { throw failure("needs `perm`, a list of axes") }
            let perm = items.compactMap { if case .int(let axis) = $0 { axis } else { nil } }
            guard perm.count == items.count, perm.sorted() == Array(0..<perm.count) else {
                throw failure("`perm` must list each axis 0…\(max(0, items.count - 1)) once")
            }
            operation = .transpose(perm)
        case "softmax": operation = .softmax(axis: integer("axis") ?? -1)
        case "sigmoid": operation = .sigmoid
        case "argmax": operation = .argmax(axis: integer("axis") ?? -1)
        case "topk":
            guard let k = integer("k"), k >= 1, k <= 1 << 20 else { throw failure("needs `k`, a whole number from 1") }
            operation = .topk(k: k, axis: integer("axis") ?? -1)
            scoresName = result + "_scores"
        case "labels":
            guard case .string(let file)? = parameters["file"] else { throw failure("needs `file`, one label per line") }
            operation = .labels(file: file, names: nil)
        case "threshold":
            guard let value = number("value"), !value.isNaN else { throw failure("needs `value`, a number") }
            operation = .threshold(value)
        case "reshape":
            throw failure("is not supported yet: a reshape cannot say what shape clients send; reshape inside the model, or send the model's shape")
        case "image":
            do { operation = .image(try ImageSpec(parameters)) } catch { throw failure(error.description) }
        case "columns":
            guard case .array(let items)? = parameters["columns"], !items.isEmpty else { throw failure("needs `columns`, a list") }
            var columns: [Column] = []
            for item in items {
                switch item {
                case .string(let name): columns.append(Column(name: name, categories: nil, onehot: false))
                case .object(let fields):
                    guard case .string(let name)? = fields["name"] else { throw failure("each column needs a `name`") }
                    var column = Column(name: name, categories: nil, onehot: false)
                    if case .array(let values)? = fields["categories"] {
                        column.categories = values.compactMap { if case .string(let text) = $0 { text } else { nil } }
                        guard column.categories?.count == values.count, Set(column.categories!).count == values.count else {
                            throw failure("the categories of column `\(name)` must be distinct strings")
                        }
                        column.onehot = fields["encode"] != .string("index")
                    }
                    switch fields["fill"] {
                    case .double(let value)?: column.fill = value
                    case .int(let value)?: column.fill = Double(value)
                    case .string(let value)?:
                        guard column.categories?.contains(value) == true else {
                            throw failure("the `fill` of column `\(name)` must be one of its categories")
                        }
                        column.fillCategory = value
                    default: break
                    }
                    columns.append(column)
                default: throw failure("a column is a name or {name, categories, encode, fill}")
                }
            }
            guard Set(columns.map(\.name)).count == columns.count else { throw failure("two columns have the same name") }
            operation = .columns(columns)
        case "tokenize":
            do { operation = .tokenize(try TokenizeSpec(parameters)) } catch { throw failure(error.message) }
        case "pool":
            do { operation = .pool(try PoolSpec(parameters)) } catch { throw failure(error.message) }
        case "detections":
            do { operation = .detections(try DetectionSpec(parameters)) } catch { throw failure(error.message) }
            scoresName = result + "_scores"
        case "rename":
            guard result != tensor else { throw failure("needs `as`, the new name") }
            operation = .rename
        case "drop":
            operation = .drop
        default:
            throw failure("is not a step Vessel knows")
        }
    }

    /// The axis a step names, resolved against a rank, or the error saying why not. Axis 0 of a
    /// tensor whose first dimension is the batch is refused: a merged batch would mix requests.
    private func resolve(_ axis: Int, _ spec: TensorSpec) throws(ProcessingError) -> Int {
        let rank = spec.shape.count
        guard rank > 0, axis >= -rank, axis < rank else { throw error("axis \(axis) is out of range for `\(spec.name)`, of rank \(rank)") }
        let resolved = axis < 0 ? axis + rank : axis
        if resolved == 0, rank >= 2, case .dynamic = spec.shape[0] {
            throw error("axis 0 of `\(spec.name)` is its batch dimension; name a per-row axis")
        }
        return resolved
    }

    private func requireFloat(_ spec: TensorSpec) throws(ProcessingError) {
        guard spec.dtype.isFloatingPoint else { throw error("takes a floating-point tensor; `\(spec.name)` is \(spec.dtype.rawValue)") }
    }

    private func requireNumeric(_ spec: TensorSpec) throws(ProcessingError) {
        guard spec.dtype != .string, spec.dtype != .bool else { throw error("takes a numeric tensor; `\(spec.name)` is \(spec.dtype.rawValue)") }
    }

    /// What a client sends so that this step gives `spec`: one input, or for `columns` one per
    /// column.
    func servedInputs(for spec: TensorSpec) throws(ProcessingError) -> [TensorSpec] {
        guard case .columns(let columns) = operation else { return [try servedInput(for: spec)] }
        guard spec.shape.count == 2, spec.dtype != .string, spec.dtype != .bool else {
            throw error("assembles a [batch, features] numeric input, but `\(spec.name)` is \(spec.dtype.rawValue) of rank \(spec.shape.count)")
        }
        let features = columns.reduce(0) { $0 + $1.features }
        if case .fixed(let width) = spec.shape[1], width != features {
            throw error("the columns make \(features) features, but `\(spec.name)` takes \(width)")
        }
        return columns.map { column in
            if let categories = column.categories {
                return TensorSpec(
                    name: column.name, dtype: .string, shape: [spec.shape[0]],
                    description: "one of \(categories.joined(separator: ", ")) (\(column.onehot ? "one-hot" : "index") into `\(spec.name)`)")
            }
            return TensorSpec(name: column.name, dtype: spec.dtype, shape: [spec.shape[0]], description: "a column of `\(spec.name)`")
        }
    }

    /// `columns`: the named column tensors of a batch as one [batch, features] tensor of `dtype`.
    func assemble(_ values: [String: Tensor], dtype: DType) throws(ProcessingError) -> Tensor {
        guard case .columns(let columns) = operation else { throw error("is not a columns step") }
        var rows: Int?
        for column in columns {
            guard let tensor = values[column.name] else { throw error("column `\(column.name)` is missing") }
            guard tensor.rank == 1 else { throw error("column `\(column.name)` must be a list of values [batch], got shape \(tensor.shape)") }
            if let rows, rows != tensor.count { throw error("column `\(column.name)` has \(tensor.count) values, the others \(rows)") }
            rows = tensor.count
        }
        let count = rows ?? 0, width = columns.reduce(0) { $0 + $1.features }
        var out = [Double](repeating: 0, count: count * width)
        var offset = 0
        for column in columns {
            let tensor = values[column.name]!
            if let categories = column.categories {
                for (row, raw) in tensor.strings.enumerated() {
                    let value = raw.isEmpty ? column.fillCategory ?? raw : raw
                    guard let index = categories.firstIndex(of: value) else {
                        throw error(
                            "column `\(column.name)` row \(row): `\(value.prefix(40))` is not one of its categories (\(categories.joined(separator: ", ")))")
                    }
                    if column.onehot { out[row * width + offset + index] = 1 } else { out[row * width + offset] = Double(index) }
                }
            } else {
                for (row, value) in tensor.doubles().enumerated() { out[row * width + offset] = value.isNaN ? column.fill ?? value : value }
            }
            offset += column.features
        }
        return Tensor(converting: out, to: dtype, shape: [count, width])
    }

    /// What a client sends so that this step gives `spec` (the next step's or the model's input).
    func servedInput(for spec: TensorSpec) throws(ProcessingError) -> TensorSpec {
        var served = spec
        switch operation {
        case .cast(let dtype):
            guard spec.dtype == dtype else {
                throw error("casts `\(spec.name)` to \(dtype.rawValue), but the model (or the next step) takes \(spec.dtype.rawValue)")
            }
            // Clients send the widest common type of the family; the step narrows it.
            served.dtype = dtype.isFloatingPoint ? (dtype == .float64 ? .float64 : .float32) : dtype == .bool ? .bool : .int64
        case .normalize(let mean, let std, let axis):
            try requireFloat(spec)
            let resolved = try resolve(axis, spec)
            if case .fixed(let channels) = spec.shape[resolved] {
                for (name, values) in [("mean", mean), ("std", std)] where values.count != 1 && values.count != channels {
                    throw error("`\(name)` has \(values.count) values, but axis \(resolved) of `\(spec.name)` has \(channels)")
                }
            }
        case .scale: try requireFloat(spec)
        case .clip: try requireNumeric(spec)
        case .transpose(let perm):
            guard perm.count == spec.shape.count else {
                throw error("`perm` has \(perm.count) axes, but `\(spec.name)` has rank \(spec.shape.count)")
            }
            for (axis, source) in perm.enumerated() { served.shape[source] = spec.shape[axis] }
        case .image(let image):
            guard spec.dtype == .float32 else {
                throw error("writes float32, but the model (or the next step) takes \(spec.dtype.rawValue) for `\(spec.name)`; add a cast after it")
            }
            let expected = image.shape(count: 1)
            guard spec.shape.count == 4 else {
                throw error(
                    "writes a rank-4 batch of images \(image.channelsFirst ? "[N, C, H, W]" : "[N, H, W, C]"), but `\(spec.name)` has rank \(spec.shape.count)")
            }
            for axis in 1..<4 {
                if case .fixed(let size) = spec.shape[axis], size != expected[axis] {
                    let got = "[" + spec.shape.map(\.description).joined(separator: ", ") + "]"
                    throw error("writes images of shape \(expected.dropFirst().map(String.init)) per item (size, color, layout), but `\(spec.name)` is \(got)")
                }
            }
            served = TensorSpec(
                name: spec.name, dtype: .string, shape: [spec.shape[0]],
                description: "an encoded image per item (JPEG, PNG or WebP): base64 or a data: URI in JSON, raw bytes as binary BYTES")
        default:
            throw error("is not a preprocess step")
        }
        return served
    }

    /// What this step writes, given the spec of the tensor it reads. Sets ``classes``.
    mutating func producedOutputs(from spec: TensorSpec) throws(ProcessingError) -> [TensorSpec] {
        var out = TensorSpec(name: result, dtype: spec.dtype, shape: spec.shape, description: result == tensor ? spec.description : "\(type) of `\(tensor)`")
        switch operation {
        case .cast(let dtype):
            guard spec.dtype != .string else { throw error("cannot cast the strings of `\(spec.name)`") }
            out.dtype = dtype
        case .scale: try requireFloat(spec)
        case .clip: try requireNumeric(spec)
        case .softmax(let axis):
            try requireFloat(spec)
            _ = try resolve(axis, spec)
        case .sigmoid: try requireFloat(spec)
        case .argmax(let axis):
            try requireNumeric(spec)
            let resolved = try resolve(axis, spec)
            out.shape.remove(at: resolved)
            out.dtype = .int64
        case .topk(let k, let axis):
            try requireNumeric(spec)
            let resolved = try resolve(axis, spec)
            if case .fixed(let size) = spec.shape[resolved], size < k {
                throw error("k is \(k), but axis \(resolved) of `\(spec.name)` has \(size) entries")
            }
            out.shape[resolved] = .fixed(k)
            out.dtype = .int64
            let scores = TensorSpec(name: scoresName!, dtype: spec.dtype, shape: out.shape, description: "scores of the top \(k) of `\(tensor)`")
            return [out, scores]
        case .labels:
            if spec.dtype.isFloatingPoint {
                guard let last = spec.shape.last else { throw error("`\(spec.name)` is a scalar; labels need class indices or class scores") }
                if case .fixed(let count) = last { classes = count }
                out.shape.removeLast()
            } else {
                guard spec.dtype != .string, spec.dtype != .bool else {
                    throw error("takes class indices or class scores; `\(spec.name)` is \(spec.dtype.rawValue)")
                }
            }
            out.dtype = .string
        case .threshold:
            try requireNumeric(spec)
            out.dtype = .bool
        case .rename:
            break
        case .detections(let detections):
            // Checks the head's shape; the class count itself is not needed here.
            do { _ = try detections.classes(of: spec) } catch { throw self.error(error.message) }
            let batch = spec.shape[0], count = Dim.dynamic(name: "detections")
            return [
                TensorSpec(
                    name: result, dtype: spec.dtype, shape: [batch, count, .fixed(4)], description: "boxes x1, y1, x2, y2 after non-maximum suppression"),
                TensorSpec(name: result + "_scores", dtype: spec.dtype, shape: [batch, count], description: "each box's score"),
                TensorSpec(name: result + "_classes", dtype: .int64, shape: [batch, count], description: "each box's class (-1 past the count)"),
                TensorSpec(name: result + "_count", dtype: .int64, shape: [batch], description: "boxes kept per image")
            ]
        case .pool:
            try requireFloat(spec)
            guard spec.shape.count == 3 else { throw error("pools [batch, sequence, hidden]; `\(spec.name)` has rank \(spec.shape.count)") }
            out.shape = [spec.shape[0], spec.shape[2]]
            if result == tensor { out.description = "pooled `\(tensor)`" }
        default:
            throw error("is not a postprocess step")
        }
        return [out]
    }

    /// Runs the step on one tensor: its result, and top-k's scores.
    func apply(_ tensor: Tensor) throws(ProcessingError) -> (Tensor, Tensor?) {
        switch operation {
        case .cast(let dtype):
            if tensor.dtype == dtype { return (tensor, nil) }
            guard tensor.dtype != .string else { throw error("cannot cast the strings of `\(self.tensor)`") }
            return (Tensor(converting: tensor.doubles(), to: dtype, shape: tensor.shape), nil)
        case .normalize(let mean, let std, let axis):
            let resolved = try runtimeAxis(axis, tensor)
            let channels = tensor.shape[resolved]
            for (name, values) in [("mean", mean), ("std", std)] where values.count != 1 && values.count != channels {
                throw error("`\(name)` has \(values.count) values, but axis \(resolved) of `\(self.tensor)` has \(channels)")
            }
            let inner = tensor.shape[(resolved + 1)...].reduce(1, *)
            if tensor.dtype == .float32 {
                // Plane by plane: one channel's mean and std for `inner` contiguous values.
                let out = Tensor(uninitialized: .float32, shape: tensor.shape)
                tensor.withUnsafeBufferPointer(as: Float.self) { input in
                    out.withUnsafeMutableBufferPointer(as: Float.self) { output in
                        var offset = 0
                        while offset < input.count {
                            let channel = channels == 0 ? 0 : (offset / max(inner, 1)) % channels
                            let m = mean[mean.count == 1 ? 0 : channel], s = std[std.count == 1 ? 0 : channel]
                            for k in offset..<min(input.count, offset + max(inner, 1)) { output[k] = Float((Double(input[k]) - m) / s) }
                            offset += max(inner, 1)
                        }
                    }
                }
                return (out, nil)
            }
            return (
                map(tensor) { value, index in
                    let channel = channels == 0 ? 0 : (index / max(inner, 1)) % channels
                    return (value - mean[mean.count == 1 ? 0 : channel]) / std[std.count == 1 ? 0 : channel]
                }, nil
            )
        case .scale(let factor, let offset):
            return (map(tensor) { value, _ in value * factor + offset }, nil)
        case .clip(let low, let high):
            return (
                map(tensor) { value, _ in
                    guard !value.isNaN else { return value }
                    return Swift.min(high ?? .infinity, Swift.max(low ?? -.infinity, value))
                }, nil
            )
        case .transpose(let perm):
            guard perm.count == tensor.rank else { throw error("`\(self.tensor)` has rank \(tensor.rank), `perm` \(perm.count) axes") }
            return (transposed(tensor, perm), nil)
        case .softmax(let axis):
            let resolved = try runtimeAxis(axis, tensor)
            return (
                alongAxis(tensor, resolved) { row in
                    let top = row.max() ?? 0
                    let exps = row.map { Double.exp($0 - top) }
                    let total = exps.reduce(0, +)
                    return exps.map { $0 / total }
                }, nil
            )
        case .sigmoid:
            return (map(tensor) { value, _ in 1 / (1 + Double.exp(-value)) }, nil)
        case .argmax(let axis):
            let resolved = try runtimeAxis(axis, tensor)
            return (reduceAxis(tensor, resolved, k: 1).indices.reshaped(tensor.shape.enumerated().filter { $0.offset != resolved }.map(\.element)), nil)
        case .topk(let k, let axis):
            let resolved = try runtimeAxis(axis, tensor)
            guard tensor.shape[resolved] >= k else {
                throw error("k is \(k), but axis \(resolved) of `\(self.tensor)` has \(tensor.shape[resolved]) entries")
            }
            let (indices, scores) = reduceAxis(tensor, resolved, k: k)
            return (indices, scores)
        case .labels(_, let names?):
            var indices = tensor
            if tensor.dtype.isFloatingPoint {
                guard tensor.rank >= 1 else { throw error("`\(self.tensor)` is a scalar") }
                indices = reduceAxis(tensor, tensor.rank - 1, k: 1).indices.reshaped(Array(tensor.shape.dropLast()))
            }
            var strings: [String] = []
            strings.reserveCapacity(indices.count)
            for index in indices.integers() {
                // -1 pads a row of detections past its count: no label.
                if index == -1 { strings.append(""); continue }
                guard index >= 0, index < names.count else {
                    throw error("class \(index) of `\(self.tensor)` has no label (the file has \(names.count))")
                }
                strings.append(names[index])
            }
            return (Tensor(strings: strings, shape: indices.shape), nil)
        case .labels(let file, nil):
            throw error("\(file) was not read")
        case .threshold(let value):
            return (Tensor(tensor.doubles().map { $0 > value }, shape: tensor.shape), nil)
        case .columns, .tokenize, .rename, .drop, .pool, .detections:
            // Several tensors in or out (or the model's inputs read): the plan runs these itself.
            throw error("is run by the plan, not on one tensor")
        case .image(let image):
            guard tensor.dtype == .string, tensor.rank == 1 else {
                throw error("takes a list of encoded images (BYTES [N]); `\(self.tensor)` is \(tensor.dtype.rawValue)\(tensor.shape)")
            }
            do { return (try image.run(tensor.strings, name: self.tensor), nil) } catch { throw self.error(error.description) }
        }
    }

    private func runtimeAxis(_ axis: Int, _ tensor: Tensor) throws(ProcessingError) -> Int {
        guard tensor.rank > 0, axis >= -tensor.rank, axis < tensor.rank else {
            throw error("axis \(axis) is out of range for `\(self.tensor)`, of shape \(tensor.shape)")
        }
        return axis < 0 ? axis + tensor.rank : axis
    }
}

// MARK: Kernels (small, row-wise; the model does the heavy work)

/// Each element through `transform(value, flatIndex)`, in the tensor's floating dtype
/// (computed in Double; float32 read and written in place of a copy).
private func map(_ tensor: Tensor, _ transform: (Double, Int) -> Double) -> Tensor {
    if tensor.dtype == .float32 {
        let out = Tensor(uninitialized: .float32, shape: tensor.shape)
        tensor.withUnsafeBufferPointer(as: Float.self) { input in
            out.withUnsafeMutableBufferPointer(as: Float.self) { output in
                for k in 0..<input.count { output[k] = Float(transform(Double(input[k]), k)) }
            }
        }
        return out
    }
    let values = tensor.doubles()
    return Tensor(converting: values.enumerated().map { transform($0.element, $0.offset) }, to: tensor.dtype, shape: tensor.shape)
}

/// Replaces each 1-D slice along `axis` by `transform(slice)` (same length).
private func alongAxis(_ tensor: Tensor, _ axis: Int, _ transform: ([Double]) -> [Double]) -> Tensor {
    var values = tensor.doubles()
    let size = tensor.shape[axis], inner = tensor.shape[(axis + 1)...].reduce(1, *)
    let outer = tensor.shape[..<axis].reduce(1, *)
    guard size > 0, inner > 0 else { return tensor }
    for o in 0..<outer {
        for i in 0..<inner {
            let base = o * size * inner + i
            let row = (0..<size).map { values[base + $0 * inner] }
            for (k, value) in transform(row).enumerated() { values[base + k * inner] = value }
        }
    }
    return Tensor(converting: values, to: tensor.dtype, shape: tensor.shape)
}

/// The `k` largest entries along `axis`, largest first, ties to the lower index (as ONNX TopK
/// and torch.topk): their indices (int64) and values (the tensor's dtype), `axis` sized `k`.
private func reduceAxis(_ tensor: Tensor, _ axis: Int, k: Int) -> (indices: Tensor, scores: Tensor) {
    let values = tensor.doubles()
    let size = tensor.shape[axis], inner = tensor.shape[(axis + 1)...].reduce(1, *)
    let outer = tensor.shape[..<axis].reduce(1, *)
    var shape = tensor.shape
    shape[axis] = k
    var indices = [Int64](repeating: 0, count: outer * k * inner)
    var scores = [Double](repeating: 0, count: outer * k * inner)
    for o in 0..<outer {
        for i in 0..<inner {
            let base = o * size * inner + i
            // NaN sorts first, as the largest (numpy's argmax returns the first NaN).
            let order = (0..<size).sorted { a, b in
                let x = values[base + a * inner], y = values[base + b * inner]
                if x.isNaN != y.isNaN { return x.isNaN }
                return x > y || (x == y && a < b) || (x.isNaN && y.isNaN && a < b)
            }
            for (rank, index) in order.prefix(k).enumerated() {
                indices[o * k * inner + rank * inner + i] = Int64(index)
                scores[o * k * inner + rank * inner + i] = values[base + index * inner]
            }
        }
    }
    return (Tensor(indices, shape: shape), Tensor(converting: scores, to: tensor.dtype, shape: shape))
}

/// The tensor with its axes permuted (`out.shape[i] = in.shape[perm[i]]`), any dtype.
private func transposed(_ tensor: Tensor, _ perm: [Int]) -> Tensor {
    let shape = perm.map { tensor.shape[$0] }
    let inStrides = Tensor.strides(of: tensor.shape)
    let count = tensor.count
    var sources = [Int](repeating: 0, count: count)
    var position = [Int](repeating: 0, count: shape.count)
    for k in 0..<count {
        var offset = 0
        for axis in 0..<shape.count { offset += position[axis] * inStrides[perm[axis]] }
        sources[k] = offset
        var axis = shape.count - 1
        while axis >= 0 {
            position[axis] += 1
            if position[axis] < shape[axis] { break }
            position[axis] = 0
            axis -= 1
        }
    }
    if tensor.dtype == .string { return Tensor(strings: sources.map { tensor.strings[$0] }, shape: shape) }
    let size = tensor.dtype.byteSize!
    let out = Tensor(uninitialized: tensor.dtype, shape: shape)
    for (k, source) in sources.enumerated() {
        (out.storage.pointer + k * size).copyMemory(from: tensor.storage.pointer + source * size, byteCount: size)
    }
    return out
}
