/// A dense, row-major tensor: a dtype, a shape, and storage (strings are kept as Swift strings).
public struct Tensor: Sendable {
    public var dtype: DType
    public var shape: [Int]
    public var storage: TensorStorage
    /// The elements of a `.string` tensor; empty for every other dtype.
    public var strings: [String]

    public var count: Int { Self.count(of: shape) }
    public var rank: Int { shape.count }

    /// The element count of a shape. Saturates at `Int.max` instead of trapping, so a shape
    /// built from hostile data compares unequal to every real count and fails the allocation
    /// check (``allocationProblem(_:_:)``) rather than taking the process down.
    public static func count(of shape: [Int]) -> Int {
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return Int.max }
            count = product
        }
        return count
    }

    /// The element count of a shape from untrusted data, or nil if a dimension is negative or
    /// a product of its dimensions overflows. Zeros are counted as ones for the overflow check:
    /// `[0, 2^40, 2^40]` holds no elements, but its strides (and any kernel's product of its
    /// trailing dimensions) would overflow, so it is refused like any other absurd shape.
    public static func checkedCount(of shape: [Int]) -> Int? {
        var count = 1
        var span = 1
        for size in shape {
            guard size >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            let (spanProduct, spanOverflow) = span.multipliedReportingOverflow(by: Swift.max(size, 1))
            if overflow || spanOverflow { return nil }
            count = product
            span = spanProduct
        }
        return count
    }

    /// The largest tensor a kernel may allocate from data-dependent shapes (64 GiB): above it,
    /// the request is an error, not an allocation that takes the process down.
    public static let maximumBytes = 1 << 36

    /// Whether a tensor of this dtype and shape may be allocated.
    public static func allocationProblem(_ dtype: DType, _ shape: [Int]) -> String? {
        guard let count = checkedCount(of: shape) else { return "shape \(shape) is invalid or too large" }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(dtype.byteSize ?? 16, 1))
        if overflow || bytes > maximumBytes { return "a \(dtype.rawValue) tensor of shape \(shape) exceeds \(maximumBytes >> 30) GiB" }
        return nil
    }

    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(dtype != .string, "string tensors hold Swift strings")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.strings = []
    }

    /// A tensor of zeros (false, or empty strings).
    public init(zeros dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
        let count = Self.count(of: shape)
        self.storage = TensorStorage(zeroedByteCount: count * (dtype.byteSize ?? 0))
        self.strings = dtype == .string ? Array(repeating: "", count: count) : []
    }

    /// A tensor whose every element the caller will write.
    public init(uninitialized dtype: DType, shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
        let count = Self.count(of: shape)
        self.storage = TensorStorage(uninitializedByteCount: count * (dtype.byteSize ?? 0))
        self.strings = dtype == .string ? Array(repeating: "", count: count) : []
    }

    public init<T: TensorElement>(_ values: [T], shape: [Int]) {
        precondition(values.count == Self.count(of: shape), "\(values.count) values for shape \(shape)")
        self.init(uninitialized: T.dtype, shape: shape)
        let destination = storage.pointer.bindMemory(to: T.self, capacity: values.count)
        values.withUnsafeBufferPointer { destination.initialize(from: $0.baseAddress!, count: values.count) }
    }

    public init(strings values: [String], shape: [Int]) {
        precondition(values.count == Self.count(of: shape))
        self.dtype = .string
        self.shape = shape
        self.storage = TensorStorage(zeroedByteCount: 0)
        self.strings = values
    }

    /// A rank-0 tensor.
    public init<T: TensorElement>(scalar: T) {
        self.init([scalar], shape: [])
    }

    public func withUnsafeBufferPointer<T: TensorElement, R>(as type: T.Type, _ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(T.dtype == dtype, "reading \(dtype) as \(T.dtype)")
        return try body(UnsafeBufferPointer(start: storage.pointer.assumingMemoryBound(to: T.self), count: count))
    }

    /// Writable access; the storage must not be a shared read-only view.
    public func withUnsafeMutableBufferPointer<T: TensorElement, R>(as type: T.Type, _ body: (UnsafeMutableBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(T.dtype == dtype, "writing \(dtype) as \(T.dtype)")
        precondition(!storage.isReadOnly, "writing a read-only tensor view")
        return try body(UnsafeMutableBufferPointer(start: storage.pointer.assumingMemoryBound(to: T.self), count: count))
    }

    /// The elements as an array (a copy).
    public func scalars<T: TensorElement>(as type: T.Type = T.self) -> [T] {
        withUnsafeBufferPointer(as: T.self) { Array($0) }
    }

    /// A tensor of `dtype` from doubles (rounded or truncated as that type converts them; a
    /// string tensor gets their decimal text).
    public init(converting values: [Double], to dtype: DType, shape: [Int]) {
        self = Tensor.dispatch(dtype, FromDoubles(values: values, shape: shape))
    }

    /// Every element as a Double, whatever the dtype (strings excluded): for comparisons and
    /// for shape-like inputs.
    public func doubles() -> [Double] {
        visit(DoublesVisitor(tensor: self))
    }

    /// Integer elements (for shape, axes, indices inputs), converted from any numeric dtype.
    public func integers() -> [Int] {
        switch dtype {
        case .int64: return withUnsafeBufferPointer(as: Int64.self) { $0.map { Int($0) } }
        case .int32: return withUnsafeBufferPointer(as: Int32.self) { $0.map { Int($0) } }
        // Saturating: a float shape or index input of NaN, 1e300 or a uint64 above Int.max
        // (hostile models and requests) becomes a value the kernel refuses, not a trap.
        default: return doubles().map { $0.isNaN ? 0 : $0 >= 9.2e18 ? Int.max : $0 <= -9.2e18 ? Int.min : Int($0) }
        }
    }

    /// The same elements under another shape of the same count; shares storage.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Self.count(of: newShape) == count, "cannot reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = newShape
        return copy
    }

    /// Row-major strides of a shape, in elements.
    public static func strides(of shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }

    /// Calls the visitor with this tensor's element type.
    public func visit<V: DTypeVisitor>(_ visitor: V) -> V.Result {
        Self.dispatch(dtype, visitor)
    }

    public static func dispatch<V: DTypeVisitor>(_ dtype: DType, _ visitor: V) -> V.Result {
        switch dtype {
        case .float32: visitor.visit(Float.self)
        case .float64: visitor.visit(Double.self)
        case .float16: visitor.visit(Float16.self)
        case .bfloat16: visitor.visit(BFloat16.self)
        case .int8: visitor.visit(Int8.self)
        case .int16: visitor.visit(Int16.self)
        case .int32: visitor.visit(Int32.self)
        case .int64: visitor.visit(Int64.self)
        case .uint8: visitor.visit(UInt8.self)
        case .uint16: visitor.visit(UInt16.self)
        case .uint32: visitor.visit(UInt32.self)
        case .uint64: visitor.visit(UInt64.self)
        case .bool: visitor.visit(Bool.self)
        case .string: visitor.visitString()
        case .float8e4m3fn: visitor.visit(Float8E4M3FN.self)
        case .float8e4m3fnuz: visitor.visit(Float8E4M3FNUZ.self)
        case .float8e5m2: visitor.visit(Float8E5M2.self)
        case .float8e5m2fnuz: visitor.visit(Float8E5M2FNUZ.self)
        case .float8e8m0: visitor.visit(Float8E8M0.self)
        case .float4e2m1: visitor.visit(Float4E2M1.self)
        case .int4: visitor.visit(Int4.self)
        case .uint4: visitor.visit(UInt4.self)
        case .int2: visitor.visit(Int2.self)
        case .uint2: visitor.visit(UInt2.self)
        }
    }
}

/// A computation generic over the element type, chosen at run time from a dtype.
public protocol DTypeVisitor {
    associatedtype Result
    func visit<T: TensorElement>(_ type: T.Type) -> Result
    func visitString() -> Result
}

struct DoublesVisitor: DTypeVisitor {
    let tensor: Tensor
    func visit<T: TensorElement>(_ type: T.Type) -> [Double] {
        tensor.withUnsafeBufferPointer(as: T.self) { $0.map(\.doubleValue) }
    }
    func visitString() -> [Double] { tensor.strings.map { Double($0) ?? .nan } }
}

extension Tensor {
    /// Joins tensors of one dtype along an existing axis.
    public static func concatenate(_ tensors: [Tensor], axis: Int) -> Tensor {
        var shape = tensors[0].shape
        shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        if tensors[0].dtype == .string {
            var values: [String] = []
            values.reserveCapacity(Tensor.count(of: shape))
            for o in 0..<outer {
                for t in tensors {
                    let block = t.shape[axis] * inner
                    values += t.strings[(o * block)..<((o + 1) * block)]
                }
            }
            return Tensor(strings: values, shape: shape)
        }
        let size = tensors[0].dtype.byteSize!
        let out = Tensor(uninitialized: tensors[0].dtype, shape: shape)
        var cursor = out.storage.pointer
        for o in 0..<outer {
            for t in tensors {
                let block = t.shape[axis] * inner * size
                cursor.copyMemory(from: t.storage.pointer + o * block, byteCount: block)
                cursor += block
            }
        }
        return out
    }
}

private struct FromDoubles: DTypeVisitor {
    let values: [Double]
    let shape: [Int]
    func visit<T: TensorElement>(_ type: T.Type) -> Tensor { Tensor(values.map { T(fromDouble: $0) }, shape: shape) }
    func visitString() -> Tensor { Tensor(strings: values.map { "\($0)" }, shape: shape) }
}
