#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselKernels
import VesselKernelsAVX512
import VesselKernelsHaswell

/// Float32 kernels for what transformers spend their non-MatMul time on — Softmax, LogSoftmax
/// and LayerNormalization over the last axis, exp/erf/sigmoid elementwise — split across the
/// intra-op threads. The arithmetic lives in `VesselKernels`, compiled three times (baseline
/// x86-64, Haswell's AVX2 + FMA, AVX-512); this picks the copy once per process. Each row (or
/// sixteen-value group) is computed by one thread in a fixed order, so results do not depend on
/// the thread count; rows' sums can differ in the last bit between copies.
enum RowKernels {
    /// The kernel copies: baseline x86-64; Haswell's AVX2 + FMA; and AVX-512 with VNNI
    /// (`VesselKernelsAVX512`), which also holds `DirectConvolution`.
    enum Variant: String, Sendable {
        case baseline, haswell, avx512

        /// Whether the Haswell copy (half conversion, the `vpmaddubsw` byte product) may run.
        var hasAVX2: Bool { self != .baseline }
    }

    /// The best copy this CPU runs (the kernel lists a feature in /proc/cpuinfo only when it also
    /// saves its registers), unless `VESSEL_KERNELS` names a lesser one (`baseline`, `haswell`).
    static let variant: Variant = {
        #if arch(x86_64)
        let best = Variant.supported(cpuFlags)
        guard let asked = ProcessInfo.processInfo.environment["VESSEL_KERNELS"].flatMap(Variant.init(rawValue:)) else { return best }
        return asked == .baseline || best == .baseline ? .baseline : asked == .haswell ? .haswell : best
        #else
        return .baseline
        #endif
    }()

    /// The CPU's feature flags, from /proc/cpuinfo (none where it cannot be read).
    static let cpuFlags: Set<String> = Set((cpuField("flags") ?? "").split(separator: " ").map(String.init))

    /// Whether the CPU runs a 512-bit multiply-add as two 256-bit halves, so sixteen lanes cost
    /// what two eight-lane multiply-adds do: AMD's Zen 4 (family 25 with AVX-512). Zen 5 (family
    /// 26) and Intel's AVX-512 cores have whole 512-bit units.
    static let halvesWideFMA: Bool = isHalvingWideFMA(vendor: cpuField("vendor_id"), family: cpuField("cpu family"), flags: cpuFlags)

    static func isHalvingWideFMA(vendor: String?, family: String?, flags: Set<String>) -> Bool {
        vendor == "AuthenticAMD" && family == "25" && flags.contains("avx512f")
    }

    /// /proc/cpuinfo, read once for all the fields asked of it (nil where it cannot be read).
    private static let cpuInfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)

    /// The first processor's `name` field in /proc/cpuinfo, nil where it cannot be read.
    static func cpuField(_ name: String) -> String? {
        guard let text = cpuInfo else { return nil }
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            // The name, padded with tabs or spaces up to the colon.
            var key = line[..<colon]
            while key.last == " " || key.last == "\t" { key = key.dropLast() }
            if key == name { return String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" })) }
        }
        return nil
    }

    /// `body` over `0..<count` cut into sixteen-value groups (whole lane groups of every copy)
    /// shared by the intra-op threads, at least `minimum` groups a part: the cuts depend on
    /// `count` alone, so elementwise results do not depend on the thread count. Transcendental
    /// maps (exp, erf, GELU: some 0.7 ns a value) split from 256 groups: a one-sentence encoder's
    /// GELU over 16 × 1536 values took 20 µs on one thread at the 4,096 a cheap pass needs.
    static func groups(_ count: Int, minimum: Int = 4_096, threads: Int, _ body: (Range<Int>) -> Void) {
        Parallel.chunks((count + 15) / 16, minimum: minimum, threads: threads) { groups in
            body((groups.lowerBound * 16)..<min(count, groups.upperBound * 16))
        }
    }

    /// Softmax (or LogSoftmax) of each `size`-long row of `input` into `output`.
    static func softmax(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, size: Int, log: Bool,
        threads: Int = Parallel.threads
    ) {
        guard size > 0 else { return }
        let variant = variant
        Parallel.chunks(rows, minimum: max(1, 16_384 / size), threads: threads) { range in
            switch variant {
            case .avx512: VesselKernelsAVX512.RowKernels.softmaxRows(input, output, rows: range, size: size, log: log)
            case .haswell: VesselKernelsHaswell.RowKernels.softmaxRows(input, output, rows: range, size: size, log: log)
            case .baseline: VesselKernels.RowKernels.softmaxRows(input, output, rows: range, size: size, log: log)
            }
        }
    }

    /// Attention's scaled and masked softmax rows on the calling thread (see
    /// `VesselKernels.RowKernels.maskedSoftmaxRows`).
    static func maskedSoftmaxRows(
        _ input: UnsafePointer<Float>, masks: UnsafePointer<Float>, maskOffsets: UnsafePointer<Int>, along: Bool, factor: Float, divide: Bool,
        _ output: UnsafeMutablePointer<Float>, rows: Range<Int>, size: Int
    ) {
        switch variant {
        case .avx512:
            VesselKernelsAVX512.RowKernels.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        case .haswell:
            VesselKernelsHaswell.RowKernels.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        case .baseline:
            VesselKernels.RowKernels.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        }
    }

    /// `maskedSoftmaxRows` over float16 scores and masks, each step rounded to half as its node
    /// rounds it (`HalfConversion.maskedSoftmaxRows`).
    static func maskedSoftmaxRows(
        _ input: UnsafePointer<Float16>, masks: UnsafePointer<Float16>, maskOffsets: UnsafePointer<Int>, along: Bool, factor: Float,
        divide: Bool, _ output: UnsafeMutablePointer<Float16>, rows: Range<Int>, size: Int
    ) {
        switch variant {
        case .avx512:
            VesselKernelsAVX512.HalfConversion.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        case .haswell:
            VesselKernelsHaswell.HalfConversion.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        case .baseline:
            VesselKernels.HalfConversion.maskedSoftmaxRows(
                input, masks: masks, maskOffsets: maskOffsets, along: along, factor: factor, divide: divide, output, rows: rows, size: size)
        }
    }

    /// One row's softmax on the calling thread (a row of −inf gives NaN: callers with a rule
    /// for it apply it first).
    static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, log: Bool) {
        switch variant {
        case .avx512: VesselKernelsAVX512.RowKernels.softmaxRow(x, y, n, log: log)
        case .haswell: VesselKernelsHaswell.RowKernels.softmaxRow(x, y, n, log: log)
        case .baseline: VesselKernels.RowKernels.softmaxRow(x, y, n, log: log)
        }
    }

    /// LayerNormalization of each `size`-long row (see `VesselKernels.RowKernels.layerNormRows`).
    static func layerNorm(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, size: Int, epsilon: Float,
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        means: UnsafeMutablePointer<Float>?, inverseStd: UnsafeMutablePointer<Float>?, threads: Int = Parallel.threads
    ) {
        guard size > 0 else { return }
        let variant = variant
        Parallel.chunks(rows, minimum: max(1, 16_384 / size), threads: threads) { range in
            switch variant {
            case .avx512:
                VesselKernelsAVX512.RowKernels.layerNormRows(
                    input, output, rows: range, size: size, epsilon: epsilon, scale: scale, bias: bias, means: means, inverseStd: inverseStd)
            case .haswell:
                VesselKernelsHaswell.RowKernels.layerNormRows(
                    input, output, rows: range, size: size, epsilon: epsilon, scale: scale, bias: bias, means: means, inverseStd: inverseStd)
            case .baseline:
                VesselKernels.RowKernels.layerNormRows(
                    input, output, rows: range, size: size, epsilon: epsilon, scale: scale, bias: bias, means: means, inverseStd: inverseStd)
            }
        }
    }

    /// An elementwise function over float32 values, split across the intra-op threads in
    /// sixteen-value groups (whole lane groups of every copy), so results do not depend on the
    /// thread count.
    static func map(
        _ function: VesselKernels.RowKernels.Unary, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
        threads: Int = Parallel.threads
    ) {
        let variant = variant
        groups(count, minimum: 256, threads: threads) { range in
            switch variant {
            case .avx512:
                let f: VesselKernelsAVX512.RowKernels.Unary = function == .exp ? .exp : function == .erf ? .erf : .sigmoid
                VesselKernelsAVX512.RowKernels.map(f, input, output, range: range)
            case .haswell:
                let f: VesselKernelsHaswell.RowKernels.Unary = function == .exp ? .exp : function == .erf ? .erf : .sigmoid
                VesselKernelsHaswell.RowKernels.map(f, input, output, range: range)
            case .baseline: VesselKernels.RowKernels.map(function, input, output, range: range)
            }
        }
    }

    /// GELU spelled with Erf (see `VesselKernels.RowKernels.gelu`), split across the intra-op
    /// threads in sixteen-value groups.
    static func gelu(
        _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int, c1: Float, divide: Bool, c2: Float, c3: Float,
        scaleLast: Bool, threads: Int = Parallel.threads
    ) {
        let variant = variant
        groups(count, minimum: 256, threads: threads) { range in
            switch variant {
            case .avx512:
                VesselKernelsAVX512.RowKernels.gelu(input, output, range: range, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast)
            case .haswell:
                VesselKernelsHaswell.RowKernels.gelu(input, output, range: range, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast)
            case .baseline:
                VesselKernels.RowKernels.gelu(input, output, range: range, c1: c1, divide: divide, c2: c2, c3: c3, scaleLast: scaleLast)
            }
        }
    }

    /// The least and greatest of `count` floats, NaN ignored ((+∞, −∞) when none).
    static func range(_ x: UnsafePointer<Float>, count: Int) -> (low: Float, high: Float) {
        switch variant {
        case .avx512: VesselKernelsAVX512.QuantizeKernels.range(x, count: count)
        case .haswell: VesselKernelsHaswell.QuantizeKernels.range(x, count: count)
        case .baseline: VesselKernels.QuantizeKernels.range(x, count: count)
        }
    }

    /// Floats to bytes as `DynamicQuantizeLinear` makes them (see `QuantizeKernels.quantize`),
    /// split across the intra-op threads.
    static func quantize(
        _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>, count: Int, scale: Float, zeroPoint: Float, threads: Int = Parallel.threads
    ) {
        let variant = variant
        groups(count, threads: threads) { range in
            let (first, n) = (range.lowerBound, range.count)
            switch variant {
            case .avx512: VesselKernelsAVX512.QuantizeKernels.quantize(x + first, y + first, count: n, scale: scale, zeroPoint: zeroPoint)
            case .haswell: VesselKernelsHaswell.QuantizeKernels.quantize(x + first, y + first, count: n, scale: scale, zeroPoint: zeroPoint)
            case .baseline: VesselKernels.QuantizeKernels.quantize(x + first, y + first, count: n, scale: scale, zeroPoint: zeroPoint)
            }
        }
    }
}

extension RowKernels.Variant {
    /// What each copy's code may use: Haswell's `-target-cpu` (AVX2, FMA, BMI, F16C, …), and
    /// Cascade Lake's, which adds AVX-512 F/CD/BW/DQ/VL and VNNI.
    static let haswellFlags: Set<String> = ["avx", "avx2", "fma", "bmi1", "bmi2", "f16c", "movbe", "popcnt", "abm"]
    static let avx512Flags: Set<String> = haswellFlags.union(["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"])

    static func supported(_ flags: Set<String>) -> Self {
        flags.isSuperset(of: avx512Flags) ? .avx512 : flags.isSuperset(of: haswellFlags) ? .haswell : .baseline
    }
}
