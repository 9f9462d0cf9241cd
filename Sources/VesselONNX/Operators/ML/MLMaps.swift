#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// The `ai.onnx.ml` operators that take or give maps: ZipMap (class probabilities as one map
/// per row), DictVectorizer and CastMap (maps to dense tensors).
extension KernelRegistry {
    static func registerMLMaps(_ r: inout KernelRegistry) {
        r.registerPreparedValues("ZipMap", domain: mlDomain, zipMapKernel)

        r.registerPreparedValues("DictVectorizer", domain: mlDomain, dictVectorizerKernel)

        r.registerPreparedValues("CastMap", domain: mlDomain, castMapKernel)
    }

    static func zipMapKernel(_ node: Node) throws -> ValueKernelFunction {
        let labels = try ClassLabels(node: node, integers: "classlabels_int64s")
        guard labels.count > 0 else { throw node.invalid("needs classlabels_strings or classlabels_int64s") }
        let keys: Tensor
        switch labels {
        case .integers(let values): keys = Tensor(values, shape: [values.count])
        case .strings(let values): keys = Tensor(strings: values, shape: [values.count])
        }
        return { c, i in
            guard let x = i.first??.tensor else { throw c.invalid("takes a float tensor") }
            guard x.dtype == .float32 else { throw c.invalid("takes float input, got \(x.dtype.rawValue)") }
            let (rows, columns) = try x.mlRows(c)
            guard columns == labels.count else { throw c.invalid("the input has \(columns) columns for \(labels.count) class labels") }
            let values = x.scalars(as: Float.self)
            let maps = (0..<rows).map { row in
                ONNXValue.map(keys: keys, values: Tensor(Array(values[row * columns..<(row + 1) * columns]), shape: [columns]))
            }
            return [.sequence(maps)]
        }
    }

    static func dictVectorizerKernel(_ node: Node) throws -> ValueKernelFunction {
        let strings = node.attributes.strings("string_vocabulary") ?? [], integers = node.attributes.ints("int64_vocabulary") ?? []
        guard strings.isEmpty != integers.isEmpty else { throw node.invalid("give exactly one of string_vocabulary and int64_vocabulary") }
        let vocabulary = max(strings.count, integers.count)
        let stringIndex = Dictionary(strings.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        let integerIndex = Dictionary(integers.enumerated().map { (Int64($1), $0) }, uniquingKeysWith: { first, _ in first })
        return { c, i in
            guard let input = i.first ?? nil else { throw c.invalid("missing input 0") }
            let maps: [(Tensor, Tensor)]
            switch input {
            case .map(let keys, let values): maps = [(keys, values)]
            case .sequence(let elements):
                maps = try elements.map {
                    guard case .map(let keys, let values) = $0 else { throw c.invalid("takes a map or a sequence of maps") }
                    return (keys, values)
                }
            case .tensor: throw c.invalid("takes a map, got a tensor")
            }
            guard let valueType = maps.first?.1.dtype else { return [.tensor(Tensor(zeros: .float32, shape: [0, vocabulary]))] }
            // Positions of each map's entries in the output row.
            var positions: [[(Int, Int)]] = []
            for (keys, values) in maps {
                guard values.dtype == valueType else { throw c.invalid("the maps hold values of different types") }
                var row: [(Int, Int)] = []
                if keys.dtype == .string {
                    guard !strings.isEmpty else { throw c.invalid("string keys need string_vocabulary") }
                    for (k, key) in keys.strings.enumerated() { if let p = stringIndex[key] { row.append((p, k)) } }
                } else {
                    guard !integers.isEmpty else { throw c.invalid("int64 keys need int64_vocabulary") }
                    for (k, key) in Cast.Int64Reader(tensor: keys).visit(Int64.self).enumerated() { if let p = integerIndex[key] { row.append((p, k)) } }
                }
                positions.append(row)
            }
            let shape = [maps.count, vocabulary]
            if valueType == .string {
                var out = [String](repeating: "", count: maps.count * vocabulary)
                for (m, row) in positions.enumerated() { for (p, k) in row { out[m * vocabulary + p] = maps[m].1.strings[k] } }
                return [.tensor(Tensor(strings: out, shape: shape))]
            }
            var out = [Double](repeating: 0, count: maps.count * vocabulary)
            for (m, row) in positions.enumerated() {
                let values = maps[m].1.doubles()
                for (p, k) in row { out[m * vocabulary + p] = values[k] }
            }
            return [.tensor(Cast.fromDoubles(out, dtype: valueType, shape: shape))]
        }
    }

    static func castMapKernel(_ node: Node) throws -> ValueKernelFunction {
        let castTo = node.attributes.string("cast_to", default: "TO_FLOAT")
        guard ["TO_FLOAT", "TO_STRING", "TO_INT64"].contains(castTo) else { throw node.invalid("unknown cast_to `\(castTo)`") }
        let dense = node.attributes.string("map_form", default: "DENSE")
        guard ["DENSE", "SPARSE"].contains(dense) else { throw node.invalid("unknown map_form `\(dense)`") }
        let width = node.attributes.int("max_map", default: 1)
        return { c, i in
            guard case .map(let keys, let values)?? = i.first else { throw c.invalid("takes a map(int64, string or float)") }
            guard keys.dtype == .int64 else { throw c.invalid("takes int64 keys, got \(keys.dtype.rawValue)") }
            // Entries in key order.
            let pairs = zip(keys.scalars(as: Int64.self), 0..<values.count).sorted { $0.0 < $1.0 }
            let sourceStrings = values.dtype == .string ? values.strings : values.doubles().map { Cast.format($0) }
            let sourceNumbers = values.dtype == .string ? values.strings.map { Double($0) ?? .nan } : values.doubles()
            var slots = pairs.map { Optional($0.1) }
            if dense == "SPARSE" {
                guard width > 0 else { throw c.invalid("max_map must be positive for SPARSE") }
                slots = Array(repeating: nil, count: width)
                for (key, k) in pairs where key >= 0 && key < Int64(width) { slots[Int(key)] = k }
            }
            let shape = [1, slots.count]
            switch castTo {
            case "TO_STRING": return [.tensor(Tensor(strings: slots.map { $0.map { sourceStrings[$0] } ?? "" }, shape: shape))]
            case "TO_INT64": return [.tensor(Tensor(slots.map { $0.map { Int64(sourceNumbers[$0]) } ?? 0 }, shape: shape))]
            default: return [.tensor(Tensor(slots.map { $0.map { Float(sourceNumbers[$0]) } ?? 0 }, shape: shape))]
            }
        }
    }
}
