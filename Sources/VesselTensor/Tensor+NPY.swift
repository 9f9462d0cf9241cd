/// NumPy `.npy` files (format versions 1, 2 and 3).
/// See https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
extension Tensor {
    public enum NPYError: Error, Sendable, CustomStringConvertible {
        case notNPY
        case unsupportedVersion(Int)
        case badHeader(String)
        case unsupportedType(String)
        case truncated(expected: Int, actual: Int)

        public var description: String {
            switch self {
            case .notNPY: "not a .npy file (no \\x93NUMPY magic)"
            case .unsupportedVersion(let version): ".npy format version \(version) is not supported"
            case .badHeader(let reason): "malformed .npy header: \(reason)"
            case .unsupportedType(let descr): ".npy element type `\(descr)` is not supported"
            case .truncated(let expected, let actual): ".npy data has \(actual) bytes, the header promises \(expected)"
            }
        }
    }

    /// Reads a `.npy` file's bytes.
    public init(npy bytes: [UInt8]) throws(NPYError) {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw .notNPY }
        let major = Int(bytes[6])
        let headerLength: Int, headerStart: Int
        switch major {
        case 1: headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .notNPY }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default: throw .unsupportedVersion(major)
        }
        guard headerStart + headerLength <= bytes.count else { throw .badHeader("header runs past the end") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = Self.field("descr", in: header).map({ $0.trimmingQuotes() }) else { throw .badHeader("no descr") }
        let fortran = Self.field("fortran_order", in: header) == "True"
        guard let shapeText = Self.field("shape", in: header) else { throw .badHeader("no shape") }
        let shape = try shapeText.dropFirst().dropLast().split(separator: ",").map { part throws(NPYError) -> Int in
            let trimmed = part.filter { $0 != " " && $0 != "L" }
            guard let size = Int(trimmed), size >= 0 else { throw .badHeader("shape \(shapeText)") }
            return size
        }
        guard let count = Tensor.checkedCount(of: shape) else { throw .badHeader("shape \(shapeText) is too large") }
        let data = Array(bytes[(headerStart + headerLength)...])
        let order = descr.first!
        let kind = descr.dropFirst()
        var tensor: Tensor
        if kind.first == "U" {
            // Fixed-width UTF-32 strings.
            guard let width = Int(kind.dropFirst()) else { throw .unsupportedType(descr) }
            guard data.count >= count * width * 4 else { throw .truncated(expected: count * width * 4, actual: data.count) }
            let values = (0..<count).map { index -> String in
                var scalars: [Unicode.Scalar] = []
                for k in 0..<width {
                    let o = (index * width + k) * 4
                    let value =
                        order == ">"
                        ? UInt32(data[o]) << 24 | UInt32(data[o + 1]) << 16 | UInt32(data[o + 2]) << 8 | UInt32(data[o + 3])
                        : UInt32(data[o]) | UInt32(data[o + 1]) << 8 | UInt32(data[o + 2]) << 16 | UInt32(data[o + 3]) << 24
                    if value == 0 { break }
                    if let scalar = Unicode.Scalar(value) { scalars.append(scalar) }
                }
                return String(String.UnicodeScalarView(scalars))
            }
            tensor = Tensor(strings: values, shape: shape)
        } else {
            guard let dtype = Self.dtype(npy: String(kind)) else { throw .unsupportedType(descr) }
            let size = dtype.byteSize!
            guard data.count >= count * size else { throw .truncated(expected: count * size, actual: data.count) }
            tensor = Tensor(uninitialized: dtype, shape: shape)
            let destination = tensor.storage.pointer
            data.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: count * size) }
            if order == ">", size > 1 {
                for index in 0..<count {
                    var element = UnsafeMutableRawBufferPointer(start: destination + index * size, count: size)
                    element.reverse()
                }
            }
        }
        if fortran, shape.count > 1 {
            // Column-major on disk: read it as the reversed shape, then transpose back.
            let reversed = Array(shape.reversed())
            let strides = Tensor.strides(of: reversed)
            var offsets = [Int](repeating: 0, count: count)
            for position in 0..<count {
                var rest = position, offset = 0
                for (axis, stride) in Tensor.strides(of: shape).enumerated() {
                    offset += (rest / stride) * strides[shape.count - 1 - axis]
                    rest %= stride
                }
                offsets[position] = offset
            }
            tensor = tensor.reordered(offsets, shape: shape)
        }
        self = tensor
    }

    /// The `.npy` (version 1.0) bytes of this tensor. Types numpy has none for are widened:
    /// bfloat16 and the float8/float4 types to float32, the 4- and 2-bit integers to int8.
    public func npy() -> [UInt8] {
        if dtype == .bfloat16 || (!dtype.travels && dtype.isFloatingPoint) {
            return Tensor(doubles().map { Float($0) }, shape: shape).npy()
        }
        if !dtype.travels {
            return Tensor(doubles().map { Int8($0) }, shape: shape).npy()
        }
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var descr: String
        var body: [UInt8]
        if dtype == .string {
            let width = max(1, strings.map { $0.unicodeScalars.count }.max() ?? 1)
            descr = "<U\(width)"
            body = []
            body.reserveCapacity(count * width * 4)
            for value in strings {
                var scalars = Array(value.unicodeScalars)
                scalars += [Unicode.Scalar](repeating: Unicode.Scalar(0), count: width - scalars.count)
                for scalar in scalars {
                    let v = scalar.value
                    body += [UInt8(v & 0xff), UInt8((v >> 8) & 0xff), UInt8((v >> 16) & 0xff), UInt8(v >> 24)]
                }
            }
        } else {
            descr = Self.npyName(dtype)
            body = Array(UnsafeRawBufferPointer(start: storage.pointer, count: count * dtype.byteSize!))
        }
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        // Pad so the data starts 64-byte aligned, ending the header with a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = header.utf8.count
        return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(length & 0xff), UInt8(length >> 8)] + Array(header.utf8) + body
    }

    func reordered(_ offsets: [Int], shape: [Int]) -> Tensor {
        if dtype == .string { return Tensor(strings: offsets.map { strings[$0] }, shape: shape) }
        let size = dtype.byteSize!
        let out = Tensor(uninitialized: dtype, shape: shape)
        for (position, offset) in offsets.enumerated() {
            (out.storage.pointer + position * size).copyMemory(from: storage.pointer + offset * size, byteCount: size)
        }
        return out
    }

    static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return String(rest).trimmingSpaces()
    }

    static func dtype(npy kind: String) -> DType? {
        switch kind {
        case "f4": .float32
        case "f8": .float64
        case "f2": .float16
        case "i1": .int8
        case "i2": .int16
        case "i4": .int32
        case "i8": .int64
        case "u1": .uint8
        case "u2": .uint16
        case "u4": .uint32
        case "u8": .uint64
        case "b1": .bool
        default: nil
        }
    }

    static func npyName(_ dtype: DType) -> String {
        switch dtype {
        case .float32: "<f4"
        case .float64: "<f8"
        case .float16: "<f2"
        case .int8: "|i1"
        case .int16: "<i2"
        case .int32: "<i4"
        case .int64: "<i8"
        case .uint8: "|u1"
        case .uint16: "<u2"
        case .uint32: "<u4"
        case .uint64: "<u8"
        case .bool: "|b1"
        case .bfloat16, .string: ""
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float4e2m1: ""
        case .int4, .uint4, .int2, .uint2: ""
        }
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    func trimmingQuotes() -> String {
        String(filter { $0 != "'" && $0 != "\"" })
    }

    func range(of needle: String) -> Range<Index>? {
        var index = startIndex
        while index < endIndex {
            if self[index...].starts(with: needle) {
                return index..<self.index(index, offsetBy: needle.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
