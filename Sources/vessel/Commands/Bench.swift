import ArgumentParser
import Foundation
import VesselManifest
import VesselManifestYAML
import VesselONNX
import VesselStore
import VesselTensor

struct Bench: ParsableCommand {
    /// The process's peak resident set size (VmHWM in /proc/self/status), MiB; nil without /proc.
    static func peakResidentMiB() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, let kibibytes = Double(fields[1]) { return kibibytes / 1024 }
        }
        return nil
    }

    static let configuration = CommandConfiguration(abstract: "Measure inference latency of an ONNX model on generated inputs.")

    @Argument(help: "The .onnx model.")
    var model: String

    @Option(help: "Threads one operator may use.")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("shape"), help: ArgumentHelp("Shape for an input with dynamic dimensions, as NAME=1x3x224x224.", valueName: "name=dims"))
    var shapes: [String] = []

    @Option(name: .customLong("input"), help: ArgumentHelp("Feed this instead of generated data: NAME=FILE.npy (or .pb, .json).", valueName: "name=file"))
    var inputs: [String] = []

    @Option(help: "Timed runs (after warm-up).")
    var iterations: Int = 100

    @Option(help: "Untimed runs first.")
    var warmup: Int = 5

    @Flag(help: "Print JSON.")
    var json = false

    @Option(help: "Stop any one inference after this many seconds (checked between operators and loop iterations).")
    var timeout: Double?

    func run() throws {
        try vessel.run {
            guard iterations > 0 else { throw ValidationError("--iterations must be at least 1") }
            guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more") }
            guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1…1024") }
            _ = try runControl(timeout)
            Runtime.setIntraOpThreads(threads)
            let loadStart = DispatchTime.now()
            let loaded = try ONNXModel(path: model)
            let loadSeconds = Double(DispatchTime.now().uptimeNanoseconds - loadStart.uptimeNanoseconds) / 1e9
            var requested: [String: [Int]] = [:]
            for argument in shapes {
                let parts = argument.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let dims = Optional(parts[1].split(separator: "x").compactMap { Int($0) }),
                    dims.count == parts[1].split(separator: "x").count
                else { throw ValidationError("--shape `\(argument)` is not NAME=D1xD2x…") }
                if let problem = Tensor.allocationProblem(.float64, dims) {
                    throw ValidationError("--shape `\(argument)`: \(dims.contains { $0 < 0 } ? "sizes must not be negative" : problem)")
                }
                requested[String(parts[0])] = dims
            }
            var generator = SplitMix64(seed: 42)
            var feeds: [String: Tensor] = [:]
            for argument in inputs {
                guard let equals = argument.firstIndex(of: "=") else { throw ValidationError("--input `\(argument)` is not NAME=FILE") }
                let name = String(argument[..<equals])
                guard let info = loaded.inputs.first(where: { $0.name == name }) else { throw ValidationError("the model has no input `\(name)`") }
                feeds[name] = try readInput(String(argument[argument.index(after: equals)...]), dtype: info.dtype ?? .float32, name: name)
            }
            for input in feedableInputs(loaded) where feeds[input.name] == nil {
                let declared = input.shape ?? []
                let shape =
                    try requested[input.name]
                    ?? declared.map { dimension -> Int in
                        if case .fixed(let size) = dimension { return size }
                        throw ValidationError("input `\(input.name)` has dynamic dimensions; pass --shape \(input.name)=…")
                    }
                let count = shape.reduce(1, *)
                let values = (0..<count).map { _ in generator.nextUnit() }
                feeds[input.name] = Tensor(converting: values, to: input.dtype ?? .float32, shape: shape)
            }
            for _ in 0..<warmup { _ = try loaded.run(feeds, control: try runControl(timeout)) }
            Profiler.reset()
            var latencies: [Double] = []
            let start = DispatchTime.now()
            for _ in 0..<iterations {
                let control = try runControl(timeout)
                let before = DispatchTime.now()
                _ = try loaded.run(feeds, control: control)
                latencies.append(Double(DispatchTime.now().uptimeNanoseconds - before.uptimeNanoseconds) / 1e6)
            }
            let total = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let sorted = latencies.sorted()
            /// Nearest-rank percentile.
            func percentile(_ p: Double) -> Double {
                let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
                return sorted[min(max(rank - 1, 0), sorted.count - 1)]
            }
            var report: [String: Any] = [
                "model": model, "threads": threads, "iterations": iterations, "blas": Runtime.blasBackend, "kernels": Runtime.kernels,
                "load_ms": loadSeconds * 1000, "p50_ms": percentile(50), "p90_ms": percentile(90), "p99_ms": percentile(99),
                "mean_ms": latencies.reduce(0, +) / Double(latencies.count), "min_ms": sorted[0],
                "throughput_per_s": Double(iterations) / total
            ]
            let peak = Self.peakResidentMiB()
            if let peak { report["peak_rss_mib"] = peak }
            if json {
                let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(
                    "\(model): \(iterations) runs, \(threads) thread(s), BLAS \(Runtime.blasBackend), kernels \(Runtime.kernels), loaded in \(String(format: "%.1f", loadSeconds * 1000)) ms"
                )
                print(
                    String(
                        format: "latency ms  p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  min %.3f", percentile(50), percentile(90), percentile(99),
                        report["mean_ms"] as! Double, sorted[0]))
                print(String(format: "throughput  %.1f inferences/s", report["throughput_per_s"] as! Double))
                if let peak { print(String(format: "memory      peak RSS %.1f MiB (the whole process: model, inputs, runs)", peak)) }
                if Profiler.isEnabled {
                    let runs = Double(iterations)
                    print(
                        "\(Profiler.perNode ? "per node (VESSEL_PROFILE=nodes)" : "per operator (VESSEL_PROFILE=1)"), ms per timed run (the warm-up runs left out):"
                    )
                    for row in Profiler.report() { print(String(format: "  %-24@ %9.3f  (%d calls)", row.op as NSString, row.milliseconds / runs, row.calls)) }
                }
            }
        }
    }
}
