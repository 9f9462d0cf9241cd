#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import VesselTensor
import VesselSystem

/// ONNX `TensorProto.DataType` numbers. See onnx-ml.proto.
enum ONNXDataType {
    static func dtype(_ code: Int32) -> DType? {
        switch code {
        case 1: .float32
        case 2: .uint8
        case 3: .int8
        case 4: .uint16
        case 5: .int16
        case 6: .int32
        case 7: .int64
        case 8: .string
        case 9: .bool
        case 10: .float16
        case 11: .float64
        case 12: .uint32
        case 13: .uint64
        case 16: .bfloat16
        case 17: .float8e4m3fn
        case 18: .float8e4m3fnuz
        case 19: .float8e5m2
        case 20: .float8e5m2fnuz
        case 21: .uint4
        case 22: .int4
        case 23: .float4e2m1
        case 24: .float8e8m0
        case 25: .uint2
        case 26: .int2
        default: nil
        }
    }

    static func code(_ dtype: DType) -> Int32 {
        switch dtype {
        case .float32: 1
        case .uint8: 2
        case .int8: 3
        case .uint16: 4
        case .int16: 5
        case .int32: 6
        case .int64: 7
        case .string: 8
        case .bool: 9
        case .float16: 10
        case .float64: 11
        case .uint32: 12
        case .uint64: 13
        case .bfloat16: 16
        case .float8e4m3fn: 17
        case .float8e4m3fnuz: 18
        case .float8e5m2: 19
        case .float8e5m2fnuz: 20
        case .uint4: 21
        case .int4: 22
        case .float4e2m1: 23
        case .float8e8m0: 24
        case .uint2: 25
        case .int2: 26
        }
    }

    static func name(_ code: Int32) -> String {
        let names = [
            0: "UNDEFINED", 14: "COMPLEX64", 15: "COMPLEX128", 27: "FLOAT6E2M3", 28: "FLOAT6E3M2"
        ]
        return dtype(code)?.rawValue ?? names[Int(code)] ?? "type \(code)"
    }
}

/// Keeps a memory-mapped file alive while tensors view it.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let length: Int

    init(path: String) throws {
        // A FIFO named as a model or its external data is refused at once instead of blocking
        // the reader until something writes to it (``RegularFile``).
        let fd: Int32
        do {
            (fd, length) = try RegularFile.open(path)
        } catch {
            throw ONNXError.unreadable(
                path: path,
                reason: error.kind.map { "it is \($0), not a regular file" }
                    ?? String(cString: strerror(error.errno ?? 0)))
        }
        defer { close(fd) }
        guard length > 0 else {
            base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
            return
        }
        guard let mapped = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), mapped != MAP_FAILED else {
            throw ONNXError.unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        base = mapped
    }

    deinit {
        if length > 0 { munmap(base, length) } else { base.deallocate() }
    }

    /// Bytes of the file as `Data` that keeps the mapping alive, without copying them.
    func data(_ range: Range<Int>) -> Data {
        guard !range.isEmpty else { return Data() }
        return Data(bytesNoCopy: base + range.lowerBound, count: range.count, deallocator: .custom { _, _ in withExtendedLifetime(self) {} })
    }

    /// Bytes of the file as tensor storage: a read-only view when the offset keeps elements
    /// aligned (typed loads from a misaligned address are undefined), a copy otherwise.
    func storage(_ range: Range<Int>, elementSize: Int) -> TensorStorage {
        if range.lowerBound % elementSize == 0 {
            return TensorStorage(viewOf: base + range.lowerBound, byteCount: range.count, owner: self)
        }
        let copy = TensorStorage(uninitializedByteCount: range.count)
        copy.pointer.copyMemory(from: base + range.lowerBound, byteCount: range.count)
        return copy
    }
}

/// The initializer bytes a ``RawDataScan`` left out of the decoded model, in their mapped file.
struct RawPayloads: Sendable {
    let file: MappedFile
    let ranges: [Int: Range<Int>]
}

extension Tensor {
    /// Decodes an ONNX `TensorProto`: typed repeated fields, `raw_data` (little-endian), or
    /// `external_data` in a file beside the model, which is memory-mapped, not read.
    ///
    /// - Parameter directory: where external data files are looked up; a location that leaves
    ///   it (absolute, `..`, a symlink out) is refused.
    /// - Parameter rawData: the tensor's `raw_data`, when the decoded message left it out: a
    ///   range of a mapped model file, which the tensor views where its elements are aligned.
    init(proto: Onnx_TensorProto, directory: String?, mappedFiles: MappedFiles? = nil, rawData: (file: MappedFile, range: Range<Int>)? = nil) throws {
        let name = proto.name
        guard let dtype = ONNXDataType.dtype(proto.dataType) else {
            throw ONNXError.invalidModel("tensor `\(name)` has unsupported data type \(ONNXDataType.name(proto.dataType))")
        }
        let shape = proto.dims.map { Int($0) }
        guard let count = Tensor.checkedCount(of: shape) else { throw ONNXError.invalidModel("tensor `\(name)` has invalid dimensions \(shape)") }
        if let problem = Tensor.allocationProblem(dtype, shape) { throw ONNXError.invalidModel("tensor `\(name)`: \(problem)") }

        if dtype == .string {
            guard proto.stringData.count == count else {
                throw ONNXError.invalidModel("string tensor `\(name)` has \(proto.stringData.count) values for shape \(shape)")
            }
            self.init(strings: proto.stringData.map { String(decoding: $0, as: UTF8.self) }, shape: shape)
            return
        }
        // The serialized size: the 4- and 2-bit types are packed two or four to a byte.
        let perByte = dtype.elementsPerByte
        let byteCount = perByte > 1 ? (count + perByte - 1) / perByte : count * dtype.byteSize!
        if proto.dataLocation == .external {
            guard let directory else { throw ONNXError.externalData(tensor: name, reason: "no model directory to look in") }
            let files = mappedFiles ?? MappedFiles()
            let stored = try files.tensor(
                proto: proto, dtype: perByte > 1 ? .uint8 : dtype, shape: perByte > 1 ? [byteCount] : shape, byteCount: byteCount, directory: directory)
            self =
                perByte > 1
                ? stored.withUnsafeBufferPointer(as: UInt8.self) { Tensor.unpacking(dtype, shape: shape, bytes: UnsafeRawBufferPointer($0)) } : stored
            return
        }
        if rawData != nil || proto.hasRawData {
            let rawCount = rawData?.range.count ?? proto.rawData.count
            guard rawCount == byteCount else {
                throw ONNXError.invalidModel("tensor `\(name)` has \(rawCount) bytes of raw data, shape \(shape) of \(dtype.rawValue) needs \(byteCount)")
            }
            if perByte > 1 {
                if let (file, range) = rawData {
                    self = Tensor.unpacking(dtype, shape: shape, bytes: UnsafeRawBufferPointer(start: file.base + range.lowerBound, count: range.count))
                } else {
                    self = proto.rawData.withUnsafeBytes { Tensor.unpacking(dtype, shape: shape, bytes: $0) }
                }
                return
            }
            if let (file, range) = rawData {
                self.init(dtype: dtype, shape: shape, storage: file.storage(range, elementSize: dtype.byteSize!))
                return
            }
            self.init(uninitialized: dtype, shape: shape)
            let destination = storage.pointer
            proto.rawData.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: byteCount) }
            return
        }
        // Check the value count before allocating: the dims are only claims.
        let provided: Int
        switch dtype {
        case .float32: provided = proto.floatData.count
        case .float64: provided = proto.doubleData.count
        case .int64: provided = proto.int64Data.count
        case .uint32, .uint64: provided = proto.uint64Data.count
        default: provided = proto.int32Data.count
        }
        // int32_data holds one element each, or two (4-bit) or four (2-bit) packed ones.
        guard provided == (perByte > 1 ? byteCount : count) else {
            throw ONNXError.invalidModel("tensor `\(name)` has \(provided) values for shape \(shape)")
        }
        if perByte > 1 {
            let bytes = proto.int32Data.map { UInt8(truncatingIfNeeded: $0) }
            self = bytes.withUnsafeBytes { Tensor.unpacking(dtype, shape: shape, bytes: $0) }
            return
        }
        self.init(uninitialized: dtype, shape: shape)
        func fill<T: TensorElement, S>(_ source: [S], _ convert: (S) -> T) throws {
            withUnsafeMutableBufferPointer(as: T.self) { buffer in
                for index in 0..<count { buffer[index] = convert(source[index]) }
            }
        }
        switch dtype {
        case .float32: try fill(proto.floatData) { $0 as Float }
        case .float64: try fill(proto.doubleData) { $0 as Double }
        case .int64: try fill(proto.int64Data) { $0 as Int64 }
        case .int32: try fill(proto.int32Data) { $0 as Int32 }
        case .int16: try fill(proto.int32Data) { Int16(truncatingIfNeeded: $0) }
        case .int8: try fill(proto.int32Data) { Int8(truncatingIfNeeded: $0) }
        case .uint16: try fill(proto.int32Data) { UInt16(truncatingIfNeeded: $0) }
        case .uint8: try fill(proto.int32Data) { UInt8(truncatingIfNeeded: $0) }
        case .bool: try fill(proto.int32Data) { $0 != 0 }
        // float16 and bfloat16 travel as their bit patterns in int32_data.
        case .float16: try fill(proto.int32Data) { Float16(bitPattern: UInt16(truncatingIfNeeded: $0)) }
        case .bfloat16: try fill(proto.int32Data) { BFloat16(bits: UInt16(truncatingIfNeeded: $0)) }
        case .uint32: try fill(proto.uint64Data) { UInt32(truncatingIfNeeded: $0) }
        case .uint64: try fill(proto.uint64Data) { $0 as UInt64 }
        // float8 travels as its bit pattern, one to an int32.
        case .float8e4m3fn: try fill(proto.int32Data) { Float8E4M3FN(bits: UInt8(truncatingIfNeeded: $0)) }
        case .float8e4m3fnuz: try fill(proto.int32Data) { Float8E4M3FNUZ(bits: UInt8(truncatingIfNeeded: $0)) }
        case .float8e5m2: try fill(proto.int32Data) { Float8E5M2(bits: UInt8(truncatingIfNeeded: $0)) }
        case .float8e5m2fnuz: try fill(proto.int32Data) { Float8E5M2FNUZ(bits: UInt8(truncatingIfNeeded: $0)) }
        case .float8e8m0: try fill(proto.int32Data) { Float8E8M0(bits: UInt8(truncatingIfNeeded: $0)) }
        case .string, .float4e2m1, .int4, .uint4, .int2, .uint2: break
        }
    }

    /// Encodes as a `TensorProto` with raw little-endian data (strings in `string_data`).
    func proto(name: String) -> Onnx_TensorProto {
        var proto = Onnx_TensorProto()
        proto.name = name
        proto.dataType = ONNXDataType.code(dtype)
        proto.dims = shape.map { Int64($0) }
        if dtype == .string {
            proto.stringData = strings.map { Data($0.utf8) }
        } else {
            proto.rawData = dtype.elementsPerByte > 1 ? Data(packedBytes()) : Data(bytes: storage.pointer, count: count * dtype.byteSize!)
        }
        return proto
    }
}

/// Bytes of a file that hold a model or its external data: `length` bytes at `offset` (all of
/// the file, or one file inside a tar layer in the store).
public struct FileRegion: Sendable, Hashable {
    public var path: String
    public var offset: Int
    public var length: Int

    public init(path: String, offset: Int, length: Int) {
        self.path = path
        self.offset = offset
        self.length = length
    }

    /// The region's bytes in the mapped file, refused if the file is too short.
    func range(in file: MappedFile) throws -> Range<Int> {
        guard offset >= 0, length >= 0, offset <= file.length - length else {
            throw ONNXError.unreadable(path: path, reason: "it has \(file.length) bytes, not \(length) at offset \(offset)")
        }
        return offset..<offset + length
    }
}

/// The external data files of one model, each mapped once and shared by its tensors.
final class MappedFiles: Sendable {
    /// External data found by `location` (normalized, relative to the model's directory) before
    /// the directory is looked in.
    let regions: [String: FileRegion]

    init(regions: [String: FileRegion] = [:]) {
        self.regions = regions
    }

    private let files = Mutex<[String: MappedFile]>([:])

    func tensor(proto: Onnx_TensorProto, dtype: DType, shape: [Int], byteCount: Int, directory: String) throws -> Tensor {
        let name = proto.name
        var entries: [String: String] = [:]
        for entry in proto.externalData { entries[entry.key] = entry.value }
        guard let location = entries["location"], !location.isEmpty else {
            throw ONNXError.externalData(tensor: name, reason: "no `location`")
        }
        let components = location.split(separator: "/", omittingEmptySubsequences: true)
        if location.hasPrefix("/") || components.contains("..") {
            throw ONNXError.externalData(tensor: name, reason: "location `\(location)` leaves the model's directory")
        }
        let offset = Int(entries["offset"] ?? "0") ?? -1
        let length = entries["length"].map { Int($0) ?? -1 } ?? byteCount
        guard offset >= 0, length == byteCount else {
            throw ONNXError.externalData(
                tensor: name, reason: "offset \(entries["offset"] ?? "0") / length \(entries["length"] ?? "-") do not describe \(byteCount) bytes")
        }
        if let region = regions[components.filter { $0 != "." }.joined(separator: "/")] {
            let file = try mapped(region.path)
            let range = try region.range(in: file)
            guard offset <= range.count - byteCount else {
                throw ONNXError.externalData(tensor: name, reason: "\(location) has \(range.count) bytes, the tensor needs \(offset + byteCount)")
            }
            return Tensor(
                dtype: dtype, shape: shape,
                storage: file.storage(range.lowerBound + offset..<range.lowerBound + offset + byteCount, elementSize: dtype.byteSize!))
        }
        let path = directory.isEmpty ? location : directory.hasSuffix("/") ? directory + location : directory + "/" + location
        // Every symlink followed; a file that resolves outside the directory is refused.
        guard let resolved = ResolvedPath.of(path) else {
            throw ONNXError.externalData(tensor: name, reason: "\(location) does not exist beside the model")
        }
        guard ResolvedPath.isInside(resolved, directory: directory) else {
            throw ONNXError.externalData(tensor: name, reason: "location `\(location)` resolves outside the model's directory")
        }
        let file = try mapped(resolved)
        guard offset + byteCount <= file.length else {
            throw ONNXError.externalData(tensor: name, reason: "\(location) has \(file.length) bytes, the tensor needs \(offset + byteCount)")
        }
        return Tensor(dtype: dtype, shape: shape, storage: file.storage(offset..<offset + byteCount, elementSize: dtype.byteSize!))
    }

    private func mapped(_ path: String) throws -> MappedFile {
        try files.withLock { files in
            if let file = files[path] { return file }
            let file = try MappedFile(path: path)
            files[path] = file
            return file
        }
    }
}
