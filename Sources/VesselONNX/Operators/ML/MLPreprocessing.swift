#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// The `ai.onnx.ml` feature transforms converters put in front of a model: Scaler, Normalizer,
/// Binarizer, Imputer, OneHotEncoder, LabelEncoder, CategoryMapper, ArrayFeatureExtractor,
/// FeatureVectorizer.
extension KernelRegistry {
    static func registerMLPreprocessing(_ r: inout KernelRegistry) {
        r.registerPrepared("Scaler", domain: mlDomain, scalerKernel)

        r.registerPrepared("Normalizer", domain: mlDomain, normalizerKernel)

        r.registerPrepared("Binarizer", domain: mlDomain, binarizerKernel)

        r.registerPrepared("Imputer", domain: mlDomain, imputerKernel)

        r.registerPrepared("OneHotEncoder", domain: mlDomain, oneHotEncoderKernel)

        r.registerPrepared("LabelEncoder", domain: mlDomain, labelEncoderKernel)

        r.registerPrepared("CategoryMapper", domain: mlDomain, categoryMapperKernel)

        r.register("ArrayFeatureExtractor", domain: mlDomain, arrayFeatureExtractorKernel)

        r.registerPrepared("FeatureVectorizer", domain: mlDomain, featureVectorizerKernel)
    }

    static func scalerKernel(_ node: Node) throws -> KernelFunction {
        let offset = node.attributes.floats("offset") ?? [0], scale = node.attributes.floats("scale") ?? [1]
        return { c, i in
            let x = try c.input(i, 0)
            let columns = x.shape.last ?? 1
            for (name, list) in [("offset", offset), ("scale", scale)] where list.count != 1 && list.count != columns {
                throw c.invalid("\(name) has \(list.count) values; the input has \(columns) features")
            }
            let offsets = offset.count == 1 ? Array(repeating: offset[0], count: columns) : offset
            let scales = scale.count == 1 ? Array(repeating: scale[0], count: columns) : scale
            let y = Tensor(uninitialized: .float32, shape: x.shape)
            try x.withMLFloats(c) { input in
                y.withUnsafeMutableBufferPointer(as: Float.self) { output in
                    guard columns > 0 else { return }
                    var k = 0
                    while k < input.count {
                        for j in 0..<columns { output[k + j] = (input[k + j] - offsets[j]) * scales[j] }
                        k += columns
                    }
                }
            }
            return [y]
        }
    }

    static func normalizerKernel(_ node: Node) throws -> KernelFunction {
        let norm = node.attributes.string("norm", default: "MAX")
        // 0 MAX, 1 L1, 2 L2
        guard let mode = ["MAX": 0, "L1": 1, "L2": 2][norm] else { throw node.invalid("norm must be MAX, L1 or L2, got `\(norm)`") }
        return { c, i in
            let x = try c.input(i, 0)
            let (rows, columns) = try x.mlRows(c)
            let y = Tensor(uninitialized: .float32, shape: x.shape)
            try x.withMLFloats(c) { input in
                y.withUnsafeMutableBufferPointer(as: Float.self) { output in
                    for row in 0..<rows {
                        let base = row * columns
                        var divisor: Float = mode == 0 ? -.greatestFiniteMagnitude : 0
                        for k in base..<base + columns {
                            switch mode {
                            case 0: divisor = max(divisor, input[k])
                            case 1: divisor += abs(input[k])
                            default: divisor += input[k] * input[k]
                            }
                        }
                        for k in base..<base + columns {
                            let value = input[k]
                            if divisor == 0 {
                                output[k] = value
                            } else if mode == 2 {
                                let magnitude = (value * value / divisor).squareRoot()
                                output[k] = value < 0 ? -magnitude : magnitude
                            } else {
                                output[k] = value / divisor
                            }
                        }
                    }
                }
            }
            return [y]
        }
    }

    static func binarizerKernel(_ node: Node) throws -> KernelFunction {
        let threshold = Double(node.attributes.float("threshold", default: 0))
        return { c, i in
            let x = try c.input(i, 0)
            guard x.dtype != .string, x.dtype != .bool else { throw c.invalid("takes numeric input, got \(x.dtype.rawValue)") }
            // NaN stays NaN, as in the reference implementation.
            let values = x.doubles().map { $0.isNaN ? $0 : ($0 > threshold ? 1.0 : 0.0) }
            return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
        }
    }

    static func imputerKernel(_ node: Node) throws -> KernelFunction {
        let floats = node.attributes.floats("imputed_value_floats") ?? []
        let integers = node.attributes.ints("imputed_value_int64s") ?? []
        guard floats.isEmpty != integers.isEmpty else { throw node.invalid("give exactly one of imputed_value_floats and imputed_value_int64s") }
        let replacedFloat = node.attributes.float("replaced_value_float", default: 0)
        let replacedInteger = node.attributes.int("replaced_value_int64", default: 0)
        return { c, i in
            let x = try c.input(i, 0)
            let columns = x.shape.last ?? 1
            if x.dtype.isFloatingPoint {
                guard !floats.isEmpty else { throw c.invalid("a \(x.dtype.rawValue) input needs imputed_value_floats") }
                guard floats.count == 1 || floats.count == columns else {
                    throw c.invalid("imputed_value_floats has \(floats.count) values; the input has \(columns) features")
                }
                var values = x.doubles()
                for k in values.indices {
                    let replace = replacedFloat.isNaN ? values[k].isNaN : values[k] == Double(replacedFloat)
                    if replace { values[k] = Double(floats[floats.count == 1 ? 0 : k % columns]) }
                }
                return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
            }
            guard Cast.isInteger(x.dtype), x.dtype != .bool else { throw c.invalid("takes numeric input, got \(x.dtype.rawValue)") }
            guard !integers.isEmpty else { throw c.invalid("an integer input needs imputed_value_int64s") }
            guard integers.count == 1 || integers.count == columns else {
                throw c.invalid("imputed_value_int64s has \(integers.count) values; the input has \(columns) features")
            }
            var values = Cast.Int64Reader(tensor: x).visit(Int64.self)
            for k in values.indices where values[k] == Int64(replacedInteger) {
                values[k] = Int64(integers[integers.count == 1 ? 0 : k % columns])
            }
            return [Cast.fromInt64(values, dtype: x.dtype, shape: x.shape)]
        }
    }

    static func oneHotEncoderKernel(_ node: Node) throws -> KernelFunction {
        let strings = node.attributes.strings("cats_strings") ?? [], integers = node.attributes.ints("cats_int64s") ?? []
        guard strings.isEmpty != integers.isEmpty else { throw node.invalid("give exactly one of cats_strings and cats_int64s") }
        let zeros = node.attributes.int("zeros", default: 1) == 1
        let stringIndex = Dictionary(strings.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let integerIndex = Dictionary(integers.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let categories = max(strings.count, integers.count)
        return { c, i in
            let x = try c.input(i, 0)
            let positions: [Int?]
            if x.dtype == .string {
                guard !strings.isEmpty else { throw c.invalid("a string input needs cats_strings") }
                positions = x.strings.map { stringIndex[$0] }
            } else {
                guard !integers.isEmpty else { throw c.invalid("a numeric input needs cats_int64s") }
                positions = x.doubles().map { $0.isFinite ? integerIndex[Int($0)] : nil }
            }
            var values = [Float](repeating: 0, count: positions.count * categories)
            for (k, position) in positions.enumerated() {
                guard let position else {
                    if zeros { continue }
                    let shown = x.dtype == .string ? "`\(x.strings[k])`" : "\(x.doubles()[k])"
                    throw c.invalid("value \(shown) is not among the categories and zeros=0")
                }
                values[k * categories + position] = 1
            }
            return [Tensor(values, shape: x.shape + [categories])]
        }
    }

    static func labelEncoderKernel(_ node: Node) throws -> KernelFunction { try LabelEncoder(node: node).kernel }

    static func categoryMapperKernel(_ node: Node) throws -> KernelFunction {
        let strings = node.attributes.strings("cats_strings") ?? [], integers = (node.attributes.ints("cats_int64s") ?? []).map { Int64($0) }
        guard strings.count == integers.count else {
            throw node.invalid("cats_strings has \(strings.count) entries but cats_int64s has \(integers.count)")
        }
        let toInteger = Dictionary(zip(strings, integers), uniquingKeysWith: { first, _ in first })
        let toString = Dictionary(zip(integers, strings), uniquingKeysWith: { first, _ in first })
        let defaultInteger = Int64(node.attributes.int("default_int64", default: -1))
        let defaultString = node.attributes.string("default_string", default: "_Unused")
        return { c, i in
            let x = try c.input(i, 0)
            switch x.dtype {
            case .string: return [Tensor(x.strings.map { toInteger[$0] ?? defaultInteger }, shape: x.shape)]
            case .int64: return [Tensor(strings: x.scalars(as: Int64.self).map { toString[$0] ?? defaultString }, shape: x.shape)]
            default: throw c.invalid("takes string or int64 input, got \(x.dtype.rawValue)")
            }
        }
    }

    static func arrayFeatureExtractorKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0), y = try c.input(i, 1)
        guard x.rank >= 1 else { throw c.invalid("X must have at least one dimension") }
        let columns = x.shape[x.rank - 1]
        let indices = y.integers()
        if let bad = indices.first(where: { $0 < 0 || $0 >= columns }) {
            throw c.invalid("index \(bad) is out of range for the last dimension of size \(columns)")
        }
        let rows = x.rank == 1 ? 1 : Tensor.count(of: Array(x.shape.dropLast()))
        var offsets: [Int] = []
        offsets.reserveCapacity(rows * indices.count)
        for row in 0..<rows { for index in indices { offsets.append(row * columns + index) } }
        let shape = x.rank == 1 ? [1, indices.count] : Array(x.shape.dropLast()) + [indices.count]
        return [x.take(offsets, shape: shape)]
    }

    static func featureVectorizerKernel(_ node: Node) throws -> KernelFunction {
        let dimensions = node.attributes.ints("inputdimensions") ?? []
        return { c, i in
            let inputs = i.compactMap { $0 }
            guard !inputs.isEmpty else { throw c.invalid("needs at least one input") }
            guard dimensions.count == inputs.count else {
                throw c.invalid("inputdimensions has \(dimensions.count) entries for \(inputs.count) inputs")
            }
            let rows = inputs[0].rank <= 1 ? 1 : inputs[0].shape[0]
            let width = dimensions.reduce(0, +)
            var values = [Float](repeating: 0, count: rows * width)
            var start = 0
            for (input, dimension) in zip(inputs, dimensions) {
                let inputRows = input.rank <= 1 ? 1 : input.shape[0]
                guard inputRows == rows else { throw c.invalid("inputs have \(rows) and \(inputRows) rows") }
                let stride = rows == 0 ? 0 : input.count / rows
                let data = try input.mlFloats(c)
                for row in 0..<rows {
                    for k in 0..<min(stride, dimension) { values[row * width + start + k] = data[row * stride + k] }
                }
                start += dimension
            }
            return [Tensor(values, shape: [rows, width])]
        }
    }
}

/// LabelEncoder, every opset: keys and values as attributes of several types (opset 1: the
/// index in `classes_strings`; 2: keys_*/values_*; 4: also keys_tensor/values_tensor, doubles).
struct LabelEncoder {
    /// A key, hashed by value; float keys compare by value with every NaN equal.
    enum Key: Hashable {
        case integer(Int64), string(String), real(UInt64)

        init(real value: Double) {
            self = .real(value.isNaN ? Double.nan.bitPattern : (value == 0 ? 0 : value.bitPattern))
        }
    }

    let index: [Key: Int]
    /// The values followed by the default, so a miss reads the last element.
    let table: Tensor
    let keyKind: DType

    init(node: Node) throws {
        let a = node.attributes
        if node.opset < 2 {
            let classes = a.strings("classes_strings") ?? []
            let defaultInteger = Int64(a.int("default_int64", default: -1)), defaultString = a.string("default_string", default: "_Unused")
            // Opset 1 maps both ways; the input's type picks the direction at run time.
            index = Dictionary(classes.enumerated().map { (Key.string($1), $0) }, uniquingKeysWith: { first, _ in first })
            keyKind = .string
            table = Tensor((0..<classes.count).map(Int64.init) + [defaultInteger], shape: [classes.count + 1])
            self.classes = classes
            self.defaultString = defaultString
            return
        }
        classes = nil
        defaultString = nil
        let keys: Tensor
        if let tensor = a.tensor("keys_tensor") {
            keys = tensor
        } else if let strings = a.strings("keys_strings") {
            keys = Tensor(strings: strings, shape: [strings.count])
        } else if let integers = a.ints("keys_int64s") {
            keys = Tensor(integers.map { Int64($0) }, shape: [integers.count])
        } else if let floats = a.floats("keys_floats") {
            keys = Tensor(floats, shape: [floats.count])
        } else {
            throw node.invalid("has no keys (keys_strings, keys_int64s, keys_floats or keys_tensor)")
        }
        let values: Tensor
        if let tensor = a.tensor("values_tensor") {
            values = tensor
        } else if let strings = a.strings("values_strings") {
            values = Tensor(strings: strings, shape: [strings.count])
        } else if let integers = a.ints("values_int64s") {
            values = Tensor(integers.map { Int64($0) }, shape: [integers.count])
        } else if let floats = a.floats("values_floats") {
            values = Tensor(floats, shape: [floats.count])
        } else {
            throw node.invalid("has no values (values_strings, values_int64s, values_floats or values_tensor)")
        }
        guard keys.count == values.count else { throw node.invalid("has \(keys.count) keys but \(values.count) values") }
        let fallback: Tensor
        if let tensor = a.tensor("default_tensor") {
            guard tensor.dtype == values.dtype, tensor.count == 1 else { throw node.invalid("default_tensor must hold one \(values.dtype.rawValue)") }
            fallback = tensor.reshaped([1])
        } else if values.dtype == .string {
            fallback = Tensor(strings: [a.string("default_string", default: "_Unused")], shape: [1])
        } else if values.dtype.isFloatingPoint {
            fallback = Cast.fromDoubles([Double(a.float("default_float", default: -0.0))], dtype: values.dtype, shape: [1])
        } else {
            fallback = Cast.fromInt64([Int64(a.int("default_int64", default: -1))], dtype: values.dtype, shape: [1])
        }
        keyKind = keys.dtype
        index = Dictionary(Self.keys(of: keys).enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        table = Tensor.concatenate([values.reshaped([values.count]), fallback], axis: 0)
    }

    /// Opset 1 only: the classes, for the int64 → string direction.
    let classes: [String]?
    let defaultString: String?

    static func keys(of tensor: Tensor) -> [Key] {
        switch tensor.dtype {
        case .string: tensor.strings.map { .string($0) }
        case .float32, .float64, .float16, .bfloat16: tensor.doubles().map { Key(real: $0) }
        default: Cast.Int64Reader(tensor: tensor).visit(Int64.self).map { .integer($0) }
        }
    }

    var kernel: KernelFunction {
        { c, i in
            let x = try c.input(i, 0)
            if let classes, let defaultString {
                switch x.dtype {
                case .string: break
                case .int64:
                    return [
                        Tensor(strings: x.scalars(as: Int64.self).map { classes.indices.contains(Int($0)) ? classes[Int($0)] : defaultString }, shape: x.shape)
                    ]
                default: throw c.invalid("takes string or int64 input, got \(x.dtype.rawValue)")
                }
            }
            let inputIsString = x.dtype == .string, keysAreString = keyKind == .string
            guard inputIsString == keysAreString, x.dtype.isFloatingPoint == keyKind.isFloatingPoint else {
                throw c.invalid("the keys are \(keyKind.rawValue) but the input is \(x.dtype.rawValue)")
            }
            let miss = table.count - 1
            let offsets = Self.keys(of: x).map { index[$0] ?? miss }
            return [table.take(offsets, shape: x.shape)]
        }
    }
}
