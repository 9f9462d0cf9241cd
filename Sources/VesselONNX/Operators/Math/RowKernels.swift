#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselKernels
import VesselKernelsHaswell

/// Float32 kernels for what transformers spend their non-MatMul time on — Softmax, LogSoftmax
/// and LayerNormalization over the last axis, exp/erf/sigmoid elementwise — split across the
/// intra-op threads. The arithmetic lives in `VesselKernels`, compiled twice (baseline x86-64,
/// and Haswell's AVX2 + FMA); this picks the copy once per process. Each row (or eight-lane
/// group) is computed by one thread in a fixed order, so results do not depend on the thread
/// count; they can differ in the last bit between the two copies (FMA rounds once).
enum RowKernels {
    typealias Lanes = SIMD8<Float>

    enum Variant: String, Sendable {
        case baseline, haswell
    }

    /// Haswell's when the CPU has AVX2 and FMA (the kernel lists them in /proc/cpuinfo only when
    /// it also saves the AVX registers), unless `VESSEL_KERNELS=baseline` asks for the other.
    static let variant: Variant = {
        #if arch(x86_64)
        if ProcessInfo.processInfo.environment["VESSEL_KERNELS"] == "baseline" { return .baseline }
        return cpuHasAVX2FMA ? .haswell : .baseline
        #else
        return .baseline
        #endif
    }()

    static let cpuHasAVX2FMA: Bool = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flags = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let names = Set(flags.split(separator: " ").map(String.init))
        return names.contains("avx2") && names.contains("fma")
    }()

    /// Softmax (or LogSoftmax) of each `size`-long row of `input` into `output`.
    static func softmax(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, size: Int, log: Bool,
        threads: Int = Parallel.threads
    ) {
        guard size > 0 else { return }
        let haswell = variant == .haswell
        Parallel.chunks(rows, minimum: max(1, 16_384 / size), threads: threads) { range in
            if haswell {
                VesselKernelsHaswell.RowKernels.softmaxRows(input, output, rows: range, size: size, log: log)
            } else {
                VesselKernels.RowKernels.softmaxRows(input, output, rows: range, size: size, log: log)
            }
        }
    }

    /// One row's softmax on the calling thread (a row of −inf gives NaN: callers with a rule
    /// for it apply it first).
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        if variant == .haswell {
            VesselKernelsHaswell.RowKernels.softmaxRow(x, y, n, log: log)
        } else {
            VesselKernels.RowKernels.softmaxRow(x, y, n, log: log)
        }
    }

    /// LayerNormalization of each `size`-long row (see `VesselKernels.RowKernels.layerNormRows`).
    static func layerNorm(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, size: Int, epsilon: Float,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        means: UnsafeMutablePointer<Float>?, inverseStd: UnsafeMutablePointer<Float>?, threads: Int = Parallel.threads
    ) {
        guard size > 0 else { return }
        let haswell = variant == .haswell
        Parallel.chunks(rows, minimum: max(1, 16_384 / size), threads: threads) { range in
            if haswell {
                VesselKernelsHaswell.RowKernels.layerNormRows(
                    input, output, rows: range, size: size, epsilon: epsilon, scale: scale, bias: bias, means: means, inverseStd: inverseStd)
            } else {
                VesselKernels.RowKernels.layerNormRows(
                    input, output, rows: range, size: size, epsilon: epsilon, scale: scale, bias: bias, means: means, inverseStd: inverseStd)
            }
        }
    }

    /// An elementwise function over float32 values, eight lanes at a time, split across the
    /// intra-op threads.
    static func map(
        _ function: VesselKernels.RowKernels.Unary, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
        threads: Int = Parallel.threads
    ) {
        let haswell = variant == .haswell
        let fast: VesselKernelsHaswell.RowKernels.Unary =
            switch function {
            case .exp: .exp
            case .erf: .erf
            case .sigmoid: .sigmoid
            }
        Parallel.chunks((count + 7) / 8, minimum: 8_192, threads: threads) { groups in
            if haswell {
                VesselKernelsHaswell.RowKernels.map(fast, input, output, groups: groups, count: count)
            } else {
                VesselKernels.RowKernels.map(function, input, output, groups: groups, count: count)
            }
        }
    }
}
