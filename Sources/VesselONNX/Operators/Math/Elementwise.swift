#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RealModule
import VesselKernels
import VesselTensor

// MARK: Drivers

/// Applies `f` to every pair of broadcast elements of `a` and `b`.
@inline(__always)
func mapBinary<T: TensorElement, R: TensorElement>(_ a: Tensor, _ b: Tensor, _ type: T.Type, _ result: R.Type, _ f: (T, T) -> R) throws -> Tensor {
    let shape = try Broadcast.shape(a.shape, b.shape)
    let out = Tensor(uninitialized: R.dtype, shape: shape)
    a.withUnsafeBufferPointer(as: T.self) { pa in
        b.withUnsafeBufferPointer(as: T.self) { pb in
            out.withUnsafeMutableBufferPointer(as: R.self) { po in
                let count = po.count
                if a.shape == shape, b.shape == shape {
                    for i in 0..<count { po[i] = f(pa[i], pb[i]) }
                } else if b.count == 1, a.shape == shape {
                    let y = pb[0]
                    for i in 0..<count { po[i] = f(pa[i], y) }
                } else if a.count == 1, b.shape == shape {
                    let x = pa[0]
                    for i in 0..<count { po[i] = f(x, pb[i]) }
                } else {
                    let oa = Broadcast.offsets(from: a.shape, to: shape), ob = Broadcast.offsets(from: b.shape, to: shape)
                    for i in 0..<count { po[i] = f(pa[oa[i]], pb[ob[i]]) }
                }
            }
        }
    }
    return out
}

@inline(__always)
func mapUnary<T: TensorElement, R: TensorElement>(_ x: Tensor, _ type: T.Type, _ result: R.Type, _ f: (T) -> R) -> Tensor {
    let out = Tensor(uninitialized: R.dtype, shape: x.shape)
    x.withUnsafeBufferPointer(as: T.self) { px in
        out.withUnsafeMutableBufferPointer(as: R.self) { po in
            for i in 0..<po.count { po[i] = f(px[i]) }
        }
    }
    return out
}

/// bfloat16 has no arithmetic of its own: compute in float32 and round back.
func viaFloat(_ tensors: [Tensor], _ body: ([Tensor]) throws -> Tensor) throws -> Tensor {
    let widened = tensors.map { $0.dtype == .bfloat16 ? Cast.convert($0, to: .float32) : $0 }
    let result = try body(widened)
    return result.dtype == .float32 ? Cast.convert(result, to: .bfloat16) : result
}

/// Arithmetic with one rule for floating point and one for integers.
protocol ArithmeticOp: Sendable {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T
}

func arithmetic<Op: ArithmeticOp>(_ op: Op, _ a: Tensor, _ b: Tensor, _ context: KernelContext) throws -> Tensor {
    guard a.dtype == b.dtype else { throw context.invalid("input types differ: \(a.dtype.rawValue) and \(b.dtype.rawValue)") }
    if a.dtype == .float32, let fast = try floatArithmetic(op, a, b) { return fast }
    switch a.dtype {
    case .float32: return try mapBinary(a, b, Float.self, Float.self, op.float)
    case .float64: return try mapBinary(a, b, Double.self, Double.self, op.float)
    case .float16: return try mapBinary(a, b, Float16.self, Float16.self, op.float)
    case .bfloat16: return try viaFloat([a, b]) { try arithmetic(op, $0[0], $0[1], context) }
    case .int8: return try mapBinary(a, b, Int8.self, Int8.self, op.integer)
    case .int16: return try mapBinary(a, b, Int16.self, Int16.self, op.integer)
    case .int32: return try mapBinary(a, b, Int32.self, Int32.self, op.integer)
    case .int64: return try mapBinary(a, b, Int64.self, Int64.self, op.integer)
    case .uint8: return try mapBinary(a, b, UInt8.self, UInt8.self, op.integer)
    case .uint16: return try mapBinary(a, b, UInt16.self, UInt16.self, op.integer)
    case .uint32: return try mapBinary(a, b, UInt32.self, UInt32.self, op.integer)
    case .uint64: return try mapBinary(a, b, UInt64.self, UInt64.self, op.integer)
    case .bool, .string: throw context.invalid("\(a.dtype.rawValue) is not a numeric type")
    default: throw context.invalid("\(a.dtype.rawValue) is not a type this operator takes (ONNX computes with it only in Cast and (De)QuantizeLinear)")
    }
}

struct AddOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a + b }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { a &+ b }
}

struct SubOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a - b }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { a &- b }
}

struct MulOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a * b }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { a &* b }
}

struct DivOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a / b }
    // Integer division truncates toward zero, as in C and onnxruntime; by zero gives 0.
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { b == 0 ? 0 : a.dividedReportingOverflow(by: b).partialValue }
}

struct MinOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a.isNaN || b.isNaN ? .nan : Swift.min(a, b) }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { Swift.min(a, b) }
}

struct MaxOp: ArithmeticOp {
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T { Swift.max(a, b) }
}

/// `Mod` with `fmod = 0`: the result takes the divisor's sign (Python); with `fmod = 1`, the
/// dividend's (C).
struct ModOp: ArithmeticOp {
    var fmod: Bool
    func float<T: Real & TensorElement>(_ a: T, _ b: T) -> T {
        let r = a.truncatingRemainder(dividingBy: b)
        if fmod { return r }
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r
    }
    func integer<T: FixedWidthInteger & TensorElement>(_ a: T, _ b: T) -> T {
        guard b != 0 else { return 0 }
        let r = a.remainderReportingOverflow(dividingBy: b).partialValue
        if fmod { return r }
        return r != 0 && ((r < 0) != (b < 0)) ? r &+ b : r
    }
}

/// Comparisons produce booleans for every numeric type (and strings for Equal).
protocol CompareOp: Sendable {
    func compare<T: Comparable>(_ a: T, _ b: T) -> Bool
}

struct EqualOp: CompareOp { func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a == b } }
struct LessOp: CompareOp { func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a < b } }
struct LessOrEqualOp: CompareOp { func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a <= b } }
struct GreaterOp: CompareOp { func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a > b } }
struct GreaterOrEqualOp: CompareOp { func compare<T: Comparable>(_ a: T, _ b: T) -> Bool { a >= b } }

func comparison<Op: CompareOp>(_ op: Op, _ a: Tensor, _ b: Tensor, _ context: KernelContext) throws -> Tensor {
    guard a.dtype == b.dtype else { throw context.invalid("input types differ: \(a.dtype.rawValue) and \(b.dtype.rawValue)") }
    switch a.dtype {
    case .float32: return try mapBinary(a, b, Float.self, Bool.self, op.compare)
    case .float64: return try mapBinary(a, b, Double.self, Bool.self, op.compare)
    case .float16: return try mapBinary(a, b, Float16.self, Bool.self, op.compare)
    case .bfloat16: return try comparison(op, Cast.convert(a, to: .float32), Cast.convert(b, to: .float32), context)
    case .int8: return try mapBinary(a, b, Int8.self, Bool.self, op.compare)
    case .int16: return try mapBinary(a, b, Int16.self, Bool.self, op.compare)
    case .int32: return try mapBinary(a, b, Int32.self, Bool.self, op.compare)
    case .int64: return try mapBinary(a, b, Int64.self, Bool.self, op.compare)
    case .uint8: return try mapBinary(a, b, UInt8.self, Bool.self, op.compare)
    case .uint16: return try mapBinary(a, b, UInt16.self, Bool.self, op.compare)
    case .uint32: return try mapBinary(a, b, UInt32.self, Bool.self, op.compare)
    case .uint64: return try mapBinary(a, b, UInt64.self, Bool.self, op.compare)
    case .bool: return try mapBinary(a, b, Bool.self, Bool.self) { op.compare($0 ? 1 : 0, $1 ? 1 : 0) }
    case .string:
        let shape = try Broadcast.shape(a.shape, b.shape)
        let oa = Broadcast.offsets(from: a.shape, to: shape), ob = Broadcast.offsets(from: b.shape, to: shape)
        let values = (0..<Tensor.count(of: shape)).map { op.compare(a.strings[oa[$0]], b.strings[ob[$0]]) }
        return Tensor(values, shape: shape)
    default: throw context.invalid("\(a.dtype.rawValue) is not a type this operator takes (ONNX computes with it only in Cast and (De)QuantizeLinear)")
    }
}

/// Unary functions of real numbers.
protocol RealFunction: Sendable {
    func apply<T: Real & TensorElement>(_ x: T) -> T
}

func realUnary<F: RealFunction>(_ function: F, _ x: Tensor, _ context: KernelContext) throws -> Tensor {
    switch x.dtype {
    case .float32: return mapUnary(x, Float.self, Float.self, function.apply)
    case .float64: return mapUnary(x, Double.self, Double.self, function.apply)
    case .float16: return mapUnary(x, Float16.self, Float16.self, function.apply)
    case .bfloat16: return try viaFloat([x]) { try realUnary(function, $0[0], context) }
    default: throw context.invalid("\(x.dtype.rawValue) input; this operator needs floating point")
    }
}

/// A unary function given as a closure over Double, for the few operators (and integer types)
/// where that precision is enough.
struct Closure: RealFunction {
    let f: @Sendable (Double) -> Double
    func apply<T: Real & TensorElement>(_ x: T) -> T { T(fromDouble: f(x.doubleValue)) }
}

struct Exp: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .exp(x) } }
struct Log: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .log(x) } }
struct Sqrt: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .sqrt(x) } }
struct Sin: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .sin(x) } }
struct Cos: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .cos(x) } }
struct Tan: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .tan(x) } }
struct Asin: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .asin(x) } }
struct Acos: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .acos(x) } }
struct Atan: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .atan(x) } }
struct Sinh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .sinh(x) } }
struct Cosh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .cosh(x) } }
struct Asinh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .asinh(x) } }
struct Acosh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .acosh(x) } }
struct Atanh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .atanh(x) } }
struct Tanh: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .tanh(x) } }
struct Erf: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { .erf(x) } }
struct Reciprocal: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { 1 / x } }
struct Floor: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { x.rounded(.down) } }
struct Ceil: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { x.rounded(.up) } }
/// Round half to even, as numpy and the ONNX spec do.
struct Round: RealFunction { func apply<T: Real & TensorElement>(_ x: T) -> T { x.rounded(.toNearestOrEven) } }
struct Sigmoid: RealFunction {
    func apply<T: Real & TensorElement>(_ x: T) -> T {
        // Split by sign so exp never overflows.
        x >= 0 ? 1 / (1 + .exp(-x)) : .exp(x) / (1 + .exp(x))
    }
}

/// Sign, Abs and Neg apply to integers as well.
func signedUnary(_ x: Tensor, _ context: KernelContext, float: @escaping @Sendable (Double) -> Double, integer: @escaping (Int64) -> Int64) throws -> Tensor {
    if x.dtype.isFloatingPoint { return try realUnary(Closure(f: { float($0) }), x, context) }
    guard x.dtype != .bool, x.dtype != .string else { throw context.invalid("\(x.dtype.rawValue) is not numeric") }
    switch x.dtype {
    case .int64: return mapUnary(x, Int64.self, Int64.self) { integer($0) }
    case .int32: return mapUnary(x, Int32.self, Int32.self) { Int32(truncatingIfNeeded: integer(Int64($0))) }
    case .int16: return mapUnary(x, Int16.self, Int16.self) { Int16(truncatingIfNeeded: integer(Int64($0))) }
    case .int8: return mapUnary(x, Int8.self, Int8.self) { Int8(truncatingIfNeeded: integer(Int64($0))) }
    case .uint8: return mapUnary(x, UInt8.self, UInt8.self) { UInt8(truncatingIfNeeded: integer(Int64($0))) }
    case .uint16: return mapUnary(x, UInt16.self, UInt16.self) { UInt16(truncatingIfNeeded: integer(Int64($0))) }
    case .uint32: return mapUnary(x, UInt32.self, UInt32.self) { UInt32(truncatingIfNeeded: integer(Int64($0))) }
    case .uint64: return mapUnary(x, UInt64.self, UInt64.self) { UInt64(truncatingIfNeeded: integer(Int64(bitPattern: $0))) }
    // The 4- and 2-bit integers are storage types: the spec gives them no arithmetic.
    default: throw context.invalid("\(x.dtype.rawValue) is not a type \(context.node.opType) takes")
    }
}

func logical(_ a: Tensor, _ b: Tensor, _ context: KernelContext, _ f: @escaping (Bool, Bool) -> Bool) throws -> Tensor {
    guard a.dtype == .bool, b.dtype == .bool else { throw context.invalid("logical operators take bool inputs") }
    return try mapBinary(a, b, Bool.self, Bool.self, f)
}

/// Folds a variadic operator (Sum, Min, Max, Mean) over its inputs with broadcasting.
func variadic<Op: ArithmeticOp>(_ op: Op, _ inputs: [Tensor?], _ context: KernelContext) throws -> Tensor {
    let present = inputs.compactMap { $0 }
    guard var result = present.first else { throw context.invalid("needs at least one input") }
    for next in present.dropFirst() { result = try arithmetic(op, result, next, context) }
    if present.count == 1 { result = Cast.convert(result, to: result.dtype) }
    return result
}

// MARK: Registration

extension KernelRegistry {
    static func registerElementwise(_ r: inout KernelRegistry) {
        r.register("Add", arithmeticKernel(AddOp()))
        r.register("Sub", arithmeticKernel(SubOp()))
        r.register("Mul", arithmeticKernel(MulOp()))
        r.register("Div", arithmeticKernel(DivOp()))
        r.register("Mod", since: 10, modKernel)
        r.register("Sum", sumKernel)
        r.register("Min", minKernel)
        r.register("Max", maxKernel)
        r.register("Mean", meanKernel)
        r.register("Pow", powKernel)

        r.register("Equal", comparisonKernel(EqualOp()))
        r.register("Less", comparisonKernel(LessOp()))
        r.register("LessOrEqual", comparisonKernel(LessOrEqualOp()))
        r.register("Greater", comparisonKernel(GreaterOp()))
        r.register("GreaterOrEqual", comparisonKernel(GreaterOrEqualOp()))
        r.register("And", andKernel)
        r.register("Or", orKernel)
        r.register("Xor", xorKernel)
        r.register("Not", notKernel)

        r.register("Exp", realUnaryKernel(Exp(), float32: .exp))
        r.register("Log", realUnaryKernel(Log()))
        r.register("Sqrt", realUnaryKernel(Sqrt()))
        r.register("Sin", realUnaryKernel(Sin()))
        r.register("Cos", realUnaryKernel(Cos()))
        r.register("Tan", realUnaryKernel(Tan()))
        r.register("Asin", realUnaryKernel(Asin()))
        r.register("Acos", realUnaryKernel(Acos()))
        r.register("Atan", realUnaryKernel(Atan()))
        r.register("Sinh", realUnaryKernel(Sinh()))
        r.register("Cosh", realUnaryKernel(Cosh()))
        r.register("Asinh", realUnaryKernel(Asinh()))
        r.register("Acosh", realUnaryKernel(Acosh()))
        r.register("Atanh", realUnaryKernel(Atanh()))
        r.register("Tanh", realUnaryKernel(Tanh()))
        r.register("Erf", realUnaryKernel(Erf(), float32: .erf))
        r.register("Reciprocal", realUnaryKernel(Reciprocal()))
        r.register("Sigmoid", realUnaryKernel(Sigmoid(), float32: .sigmoid))
        r.register("Floor", realUnaryKernel(Floor()))
        r.register("Ceil", realUnaryKernel(Ceil()))
        r.register("Round", realUnaryKernel(Round()))
        r.register("Abs", absKernel)
        r.register("Neg", negKernel)
        r.register("Sign", signKernel)
        r.register("IsNaN", isNaNKernel)
        r.register("IsInf", isInfKernel)
        r.register("Where", since: 9, whereKernel)
        r.register("Clip", clipKernel)
        r.register("Cast", castKernel)
        r.register("CastLike", since: 15, castLikeKernel)
    }

    static func arithmeticKernel<Op: ArithmeticOp>(_ op: Op) -> KernelFunction {
        { c, i in [try arithmetic(op, c.input(i, 0), c.input(i, 1), c)] }
    }

    static func comparisonKernel<Op: CompareOp>(_ op: Op) -> KernelFunction {
        { c, i in [try comparison(op, c.input(i, 0), c.input(i, 1), c)] }
    }

    /// A real function of one input; float32 through `float32`'s vectorized, threaded kernel where there is one.
    static func realUnaryKernel<F: RealFunction>(_ function: F, float32: VesselKernels.RowKernels.Unary? = nil) -> KernelFunction {
        { c, i in
            let x = try c.input(i, 0)
            if let float32, x.dtype == .float32 {
                let out = Tensor(uninitialized: .float32, shape: x.shape)
                x.withUnsafeBufferPointer(as: Float.self) { input in
                    out.withUnsafeMutableBufferPointer(as: Float.self) { output in
                        if let source = input.baseAddress, let target = output.baseAddress {
                            RowKernels.map(float32, source, target, count: input.count)
                        }
                    }
                }
                return [out]
            }
            return [try realUnary(function, x, c)]
        }
    }

    static func modKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try arithmetic(ModOp(fmod: c.attributes.int("fmod", default: 0) == 1), c.input(i, 0), c.input(i, 1), c)]
    }

    static func sumKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try variadic(AddOp(), i, c)] }

    static func minKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try variadic(MinOp(), i, c)] }

    static func maxKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try variadic(MaxOp(), i, c)] }

    static func meanKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let sum = try variadic(AddOp(), i, c)
        let count = Cast.convert(Tensor(scalar: Float(i.compactMap { $0 }.count)), to: sum.dtype)
        return [try arithmetic(DivOp(), sum, count, c)]
    }

    static func powKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let base = try c.input(i, 0), exponent = try c.input(i, 1)
        // The exponent may have another type (opset 12+): compute in double, keep the base type.
        let shape = try Broadcast.shape(base.shape, exponent.shape)
        let x = base.doubles(), y = exponent.doubles()
        let ox = Broadcast.offsets(from: base.shape, to: shape), oy = Broadcast.offsets(from: exponent.shape, to: shape)
        // Foundation's pow, not RealModule's exp∘log form: a negative base with an integral
        // exponent is defined ((-2)^3 = -8).
        let values = (0..<Tensor.count(of: shape)).map { Libm.pow(x[ox[$0]], y[oy[$0]]) }
        return [Cast.fromDoubles(values, dtype: base.dtype, shape: shape)]
    }

    static func andKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try logical(c.input(i, 0), c.input(i, 1), c) { $0 && $1 }] }

    static func orKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try logical(c.input(i, 0), c.input(i, 1), c) { $0 || $1 }] }

    static func xorKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try logical(c.input(i, 0), c.input(i, 1), c) { $0 != $1 }] }

    static func notKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        guard x.dtype == .bool else { throw c.invalid("Not takes a bool input") }
        return [mapUnary(x, Bool.self, Bool.self) { !$0 }]
    }

    static func absKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try signedUnary(c.input(i, 0), c, float: { Swift.abs($0) }, integer: { $0 == .min ? $0 : Swift.abs($0) })]
    }

    static func negKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try signedUnary(c.input(i, 0), c, float: { -$0 }, integer: { 0 &- $0 })] }

    static func signKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try signedUnary(c.input(i, 0), c, float: { $0.isNaN ? .nan : ($0 > 0 ? 1 : ($0 < 0 ? -1 : 0)) }, integer: { $0.signum() })]
    }

    static func isNaNKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        return [Tensor(x.doubles().map(\.isNaN), shape: x.shape)]
    }

    static func isInfKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let positive = c.attributes.int("detect_positive", default: 1) == 1, negative = c.attributes.int("detect_negative", default: 1) == 1
        return [Tensor(x.doubles().map { $0.isInfinite && (($0 > 0 && positive) || ($0 < 0 && negative)) }, shape: x.shape)]
    }

    static func whereKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let condition = try c.input(i, 0), x = try c.input(i, 1), y = try c.input(i, 2)
        guard condition.dtype == .bool else { throw c.invalid("condition must be bool") }
        guard x.dtype == y.dtype else { throw c.invalid("X and Y types differ") }
        return [try Select.where(condition, x, y)]
    }

    static func clipKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        var low = -Double.infinity, high = Double.infinity
        if c.opset < 11 {
            low = Double(c.attributes.float("min", default: -.greatestFiniteMagnitude))
            high = Double(c.attributes.float("max", default: .greatestFiniteMagnitude))
        } else {
            if i.count > 1, let minimum = i[1] { low = minimum.doubles()[0] }
            if i.count > 2, let maximum = i[2] { high = maximum.doubles()[0] }
        }
        let values = x.doubles().map { $0.isNaN ? $0 : Swift.min(Swift.max($0, low), high) }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }

    static func castKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let code = try c.attributes.required("to", c.attributes.int)
        guard let dtype = ONNXDataType.dtype(Int32(clamping: code)) else { throw c.invalid("cannot cast to \(ONNXDataType.name(Int32(clamping: code)))") }
        return [try castWithOptions(x, to: dtype, c)]
    }

    static func castLikeKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try castWithOptions(try c.input(i, 0), to: try c.input(i, 1).dtype, c)]
    }

    /// Cast with the node's `saturate` (opset 19: float8 targets) and `round_mode` (opset 24:
    /// the E8M0 target) attributes.
    static func castWithOptions(_ x: Tensor, to dtype: DType, _ c: KernelContext) throws -> Tensor {
        let saturate = c.attributes.int("saturate", default: 1) != 0
        let mode = c.attributes.string("round_mode", default: "up")
        guard let rounding = Float8E8M0.Rounding(rawValue: mode) else { throw c.invalid("round_mode `\(mode)` is not up, down or nearest") }
        return Cast.convert(x, to: dtype, saturate: saturate, rounding: rounding)
    }
}

/// The four float32 arithmetic operators on same-shape or scalar operands, as plain loops the
/// compiler vectorizes (the generic path calls through the op per element).
func floatArithmetic<Op: ArithmeticOp>(_ op: Op, _ a: Tensor, _ b: Tensor) throws -> Tensor? {
    let kind: Int
    switch op {
    case is AddOp: kind = 0
    case is SubOp: kind = 1
    case is MulOp: kind = 2
    case is DivOp: kind = 3
    default: return nil
    }
    let sameShape = a.shape == b.shape
    guard sameShape || b.count == 1 || a.count == 1 else { return try floatBroadcast(kind, a, b) }
    let shape = sameShape ? a.shape : try Broadcast.shape(a.shape, b.shape)
    let out = Tensor(uninitialized: .float32, shape: shape)
    let count = out.count
    guard count == max(a.count, b.count) else { return nil }
    a.withUnsafeBufferPointer(as: Float.self) { pa in
        b.withUnsafeBufferPointer(as: Float.self) { pb in
            out.withUnsafeMutableBufferPointer(as: Float.self) { po in
                Parallel.chunks(count, minimum: 65_536) { range in
                    let x = pa.baseAddress! + (a.count == 1 ? 0 : range.lowerBound)
                    let y = pb.baseAddress! + (b.count == 1 ? 0 : range.lowerBound)
                    let z = po.baseAddress! + range.lowerBound
                    let count = range.count
                    if sameShape {
                        switch kind {
                        case 0: for i in 0..<count { z[i] = x[i] + y[i] }
                        case 1: for i in 0..<count { z[i] = x[i] - y[i] }
                        case 2: for i in 0..<count { z[i] = x[i] * y[i] }
                        default: for i in 0..<count { z[i] = x[i] / y[i] }
                        }
                    } else if b.count == 1 {
                        let s = y[0]
                        switch kind {
                        case 0: for i in 0..<count { z[i] = x[i] + s }
                        case 1: for i in 0..<count { z[i] = x[i] - s }
                        case 2: for i in 0..<count { z[i] = x[i] * s }
                        default: for i in 0..<count { z[i] = x[i] / s }
                        }
                    } else {
                        let s = x[0]
                        switch kind {
                        case 0: for i in 0..<count { z[i] = s + y[i] }
                        case 1: for i in 0..<count { z[i] = s - y[i] }
                        case 2: for i in 0..<count { z[i] = s * y[i] }
                        default: for i in 0..<count { z[i] = s / y[i] }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// float32 arithmetic with general broadcasting. Adjacent axes that broadcast the same way for
/// both operands are merged (so [N,C,H,W] ⊙ [C,1,1] becomes [N, C, H·W]), and the innermost merged
/// axis runs as a contiguous loop with each operand's stride 0 or 1.
func floatBroadcast(_ kind: Int, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    let shape = try Broadcast.shape(a.shape, b.shape)
    let rank = shape.count
    let pa = [Int](repeating: 1, count: rank - a.rank) + a.shape
    let pb = [Int](repeating: 1, count: rank - b.rank) + b.shape
    // Merged axes: (size, a advances, b advances).
    var axes: [(size: Int, a: Bool, b: Bool)] = []
    for d in 0..<rank where shape[d] != 1 {
        let ua = pa[d] != 1, ub = pb[d] != 1
        if let last = axes.last, last.a == ua, last.b == ub {
            axes[axes.count - 1].size *= shape[d]
        } else {
            axes.append((shape[d], ua, ub))
        }
    }
    let out = Tensor(uninitialized: .float32, shape: shape)
    guard out.count > 0 else { return out }
    if axes.isEmpty { axes = [(1, true, true)] }
    // Element strides of each operand per merged axis (0 where it broadcasts).
    var strideA = [Int](repeating: 0, count: axes.count), strideB = strideA
    var runA = 1, runB = 1
    for k in stride(from: axes.count - 1, through: 0, by: -1) {
        if axes[k].a { strideA[k] = runA; runA *= axes[k].size }
        if axes[k].b { strideB[k] = runB; runB *= axes[k].size }
    }
    let inner = axes[axes.count - 1].size
    let stepA = strideA[axes.count - 1], stepB = strideB[axes.count - 1]
    let outerAxes = axes.count - 1
    a.withUnsafeBufferPointer(as: Float.self) { bufferA in
        b.withUnsafeBufferPointer(as: Float.self) { bufferB in
            out.withUnsafeMutableBufferPointer(as: Float.self) { bufferOut in
                var index = [Int](repeating: 0, count: max(outerAxes, 1))
                var offsetA = 0, offsetB = 0
                var z = bufferOut.baseAddress!
                let rows = out.count / inner
                for _ in 0..<rows {
                    let x = bufferA.baseAddress! + offsetA, y = bufferB.baseAddress! + offsetB
                    switch (kind, stepA, stepB) {
                    case (0, 1, 1): for i in 0..<inner { z[i] = x[i] + y[i] }
                    case (0, 1, 0): let c = y[0]; for i in 0..<inner { z[i] = x[i] + c }
                    case (0, 0, 1): let c = x[0]; for i in 0..<inner { z[i] = c + y[i] }
                    case (1, 1, 1): for i in 0..<inner { z[i] = x[i] - y[i] }
                    case (1, 1, 0): let c = y[0]; for i in 0..<inner { z[i] = x[i] - c }
                    case (1, 0, 1): let c = x[0]; for i in 0..<inner { z[i] = c - y[i] }
                    case (2, 1, 1): for i in 0..<inner { z[i] = x[i] * y[i] }
                    case (2, 1, 0): let c = y[0]; for i in 0..<inner { z[i] = x[i] * c }
                    case (2, 0, 1): let c = x[0]; for i in 0..<inner { z[i] = c * y[i] }
                    case (3, 1, 1): for i in 0..<inner { z[i] = x[i] / y[i] }
                    case (3, 1, 0): let c = y[0]; for i in 0..<inner { z[i] = x[i] / c }
                    case (3, 0, 1): let c = x[0]; for i in 0..<inner { z[i] = c / y[i] }
                    default:
                        // Both operands constant along the inner axis.
                        let v: Float =
                            switch kind {
                            case 0: x[0] + y[0];
                            case 1: x[0] - y[0];
                            case 2: x[0] * y[0];
                            default: x[0] / y[0]
                            }
                        for i in 0..<inner { z[i] = v }
                    }
                    z += inner
                    // Next row: odometer over the outer merged axes.
                    var k = outerAxes - 1
                    while k >= 0 {
                        index[k] += 1
                        offsetA += strideA[k]
                        offsetB += strideB[k]
                        if index[k] < axes[k].size { break }
                        offsetA -= strideA[k] * axes[k].size
                        offsetB -= strideB[k] * axes[k].size
                        index[k] = 0
                        k -= 1
                    }
                }
            }
        }
    }
    return out
}
