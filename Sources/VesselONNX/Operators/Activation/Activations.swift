#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RealModule
import VesselTensor

/// An elementwise activation computed in Double and rounded back to the input's type.
func activation(_ x: Tensor, _ context: KernelContext, _ f: @escaping @Sendable (Double) -> Double) throws -> Tensor {
    guard x.dtype.isFloatingPoint else { throw context.invalid("\(x.dtype.rawValue) input; activations need floating point") }
    return try realUnary(Closure(f: f), x, context)
}

extension KernelRegistry {
    static func registerActivations(_ r: inout KernelRegistry) {
        r.register("Relu", reluKernel)
        r.register("LeakyRelu", leakyReluKernel)
        r.register("PRelu", pReluKernel)
        r.register("Elu", eluKernel)
        r.register("Selu", seluKernel)
        r.register("Celu", since: 12, celuKernel)
        r.register("HardSigmoid", hardSigmoidKernel)
        r.register("HardSwish", since: 14, hardSwishKernel)
        r.register("Softplus", softplusKernel)
        r.register("Softsign", softsignKernel)
        r.register("Gelu", since: 20, geluKernel)
        r.register("Mish", since: 18, mishKernel)
        r.register("ThresholdedRelu", since: 10, thresholdedReluKernel)
        r.register("Shrink", since: 9, shrinkKernel)
        r.register("Swish", since: 24, swishKernel)
    }

    static func swishKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 1))
        return [try activation(c.input(i, 0), c) { $0 / (1 + Libm.exp(-alpha * $0)) }]
    }

    static func reluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        if x.dtype == .float32 {
            let out = Tensor(uninitialized: .float32, shape: x.shape)
            x.withUnsafeBufferPointer(as: Float.self) { source in
                out.withUnsafeMutableBufferPointer(as: Float.self) { reluFloat(source.baseAddress!, $0.baseAddress!, count: x.count) }
            }
            return [out]
        }
        if x.dtype.isFloatingPoint { return [try activation(x, c) { $0 > 0 || $0.isNaN ? $0 : 0 }] }
        return [Cast.fromDoubles(x.doubles().map { Swift.max($0, 0) }, dtype: x.dtype, shape: x.shape)]
    }

    static func leakyReluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 0.01))
        return [try activation(c.input(i, 0), c) { $0 >= 0 ? $0 : alpha * $0 }]
    }

    static func pReluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        var slope = try c.input(i, 1)
        // Before numpy broadcasting (opset < 7) a 1-D slope of C values applies per channel.
        if (try? Broadcast.shape(x.shape, slope.shape)) == nil, slope.rank == 1, x.rank > 1, slope.count == x.shape[1] {
            slope = slope.reshaped([slope.count] + [Int](repeating: 1, count: x.rank - 2))
        }
        let shape = try Broadcast.shape(x.shape, slope.shape)
        let xs = x.doubles(), ss = slope.doubles()
        let ox = Broadcast.offsets(from: x.shape, to: shape), os = Broadcast.offsets(from: slope.shape, to: shape)
        let values = (0..<Tensor.count(of: shape)).map { xs[ox[$0]] >= 0 ? xs[ox[$0]] : xs[ox[$0]] * ss[os[$0]] }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: shape)]
    }

    static func eluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 1))
        return [try activation(c.input(i, 0), c) { $0 >= 0 ? $0 : alpha * (Double.exp($0) - 1) }]
    }

    static func seluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 1.67326319217681884765625))
        let gamma = Double(c.attributes.float("gamma", default: 1.05070102214813232421875))
        return [try activation(c.input(i, 0), c) { $0 > 0 ? gamma * $0 : gamma * alpha * (Double.exp($0) - 1) }]
    }

    static func celuKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 1))
        return [try activation(c.input(i, 0), c) { Swift.max(0, $0) + Swift.min(0, alpha * (Double.exp($0 / alpha) - 1)) }]
    }

    static func hardSigmoidKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 0.2)), beta = Double(c.attributes.float("beta", default: 0.5))
        return [try activation(c.input(i, 0), c) { Swift.max(0, Swift.min(1, alpha * $0 + beta)) }]
    }

    static func hardSwishKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try activation(c.input(i, 0), c) { $0 * Swift.max(0, Swift.min(1, $0 / 6 + 0.5)) }]
    }

    static func softplusKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        // log(1 + e^x) without overflow for large x.
        [try activation(c.input(i, 0), c) { $0 > 0 ? $0 + Double.log(onePlus: Double.exp(-$0)) : Double.log(onePlus: Double.exp($0)) }]
    }

    static func softsignKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] { [try activation(c.input(i, 0), c) { $0 / (1 + Swift.abs($0)) }] }

    static func geluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let tanh = c.attributes.string("approximate", default: "none") == "tanh"
        return [
            try activation(c.input(i, 0), c) { x in
                tanh
                    ? 0.5 * x * (1 + Double.tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
                    : 0.5 * x * (1 + Double.erf(x / 2.0.squareRoot()))
            }
        ]
    }

    static func mishKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        [try activation(c.input(i, 0), c) { x in x * Double.tanh(x > 0 ? x + Double.log(onePlus: Double.exp(-x)) : Double.log(onePlus: Double.exp(x))) }]
    }

    static func thresholdedReluKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let alpha = Double(c.attributes.float("alpha", default: 1))
        return [try activation(c.input(i, 0), c) { $0 > alpha ? $0 : 0 }]
    }

    static func shrinkKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        let x = try c.input(i, 0)
        let lambd = Double(c.attributes.float("lambd", default: 0.5)), bias = Double(c.attributes.float("bias", default: 0))
        let values = x.doubles().map { $0 < -lambd ? $0 + bias : ($0 > lambd ? $0 - bias : 0) }
        return [Cast.fromDoubles(values, dtype: x.dtype, shape: x.shape)]
    }
}

/// max(x, 0) keeping NaN, as a loop the compiler vectorizes; source and destination may be the
/// same buffer.
func reluFloat(_ source: UnsafePointer<Float>, _ destination: UnsafeMutablePointer<Float>, count: Int) {
    Parallel.chunks(count, minimum: 65_536) { range in
        for i in range {
            let v = source[i]
            destination[i] = v < 0 ? 0 : v
        }
    }
}
