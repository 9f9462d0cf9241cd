import ArgumentParser
import Foundation
import VesselManifest
import VesselModel
import VesselServer
import VesselStore
import VesselTensor

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one prediction through a model's whole pipeline — its processing steps and the model — and print the answer.",
        discussion: """
            Inputs follow the served signature (`vessel inspect` shows it): what a client of `vessel serve` sends. \
            NAME=FILE.npy, NAME=FILE.json, NAME=<inline JSON>, or for a BYTES input (an image step's) NAME=@FILE \
            (its bytes, one element) or plain text.
            """
    )

    @Argument(help: ArgumentHelp("An artifact (NAME[:TAG], NAME@DIGEST) or a model directory.", valueName: "ref-or-dir"))
    var model: String

    @Option(name: [.customShort("i"), .customLong("input")], help: ArgumentHelp("An input, NAME=VALUE (repeat for each).", valueName: "name=value"))
    var inputs: [String] = []

    @Flag(help: "Print the answer as the server would: an OIP v2 inference response (model_name, model_version, outputs).")
    var json = false

    @Option(help: "Stop the inference after this many seconds (checked between operators and loop iterations).")
    var timeout: Double?

    @Option(
        name: .customLong("repeat"),
        help: "Run the prediction this many times more and print its latency (p50, p90, min) on standard error: the whole pipeline, processing included.")
    var repetitions: Int = 0

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let control = try runControl(timeout)
            let source = try modelSource(model, store: store)
            let work = FileSystem.join(NSTemporaryDirectory(), "vessel-predict-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            defer { try? FileManager.default.removeItem(atPath: work) }
            let loaded = try source.open(work)
            try loaded.pendingCheck?.wait()
            let signature = loaded.signature
            var feeds: [String: Tensor] = [:]
            for argument in inputs {
                guard let equals = argument.firstIndex(of: "=") else { throw ValidationError("--input `\(argument)` is not NAME=VALUE") }
                let name = String(argument[..<equals])
                var value = String(argument[argument.index(after: equals)...])
                guard let spec = signature.input(named: name) else {
                    throw ValidationError("\(loaded.name) has no input `\(name)`; its inputs are \(signature.inputs.map(\.name).joined(separator: ", "))")
                }
                let isFile = value.hasPrefix("@")
                if isFile { value.removeFirst() }
                if spec.dtype == .string, isFile, !value.hasSuffix(".json"), !value.hasSuffix(".npy") {
                    // A file for a BYTES input (an image): one element, its bytes.
                    feeds[name] = Tensor(strings: [BytesElement.string(Array(try inputFile(value, name: name)))], shape: [1])
                } else if spec.dtype == .string, !value.hasSuffix(".json"), !value.hasSuffix(".npy"),
                    (try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])) == nil
                {
                    // Plain text: one string, shaped as the input's rank asks.
                    feeds[name] = Tensor(strings: [value], shape: Array(repeating: 1, count: spec.shape.count))
                } else {
                    feeds[name] = try readInput(value, dtype: spec.dtype, name: name)
                }
            }
            do {
                try signature.validate(feeds, allowNaN: loaded.manifest.serving.allowNaN)
            } catch {
                throw ValidationError("\(error)")
            }
            let outputs = try loaded.backend.predict(feeds, control: control)
            if repetitions > 0 {
                guard repetitions <= 1_000_000 else { throw ValidationError("--repeat must be at most 1000000") }
                var times: [Double] = []
                for _ in 0..<repetitions {
                    let start = DispatchTime.now()
                    _ = try loaded.backend.predict(feeds, control: control)
                    times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6)
                }
                times.sort()
                let p50 = times[times.count / 2], p90 = times[min(times.count - 1, times.count * 9 / 10)]
                printError(String(format: "predict: %d runs, p50 %.3f ms, p90 %.3f ms, min %.3f ms (processing and model)", times.count, p50, p90, times[0]))
            }
            let ordered = signature.outputs.compactMap { spec in outputs[spec.name].map { (spec.name, $0) } }
            if json {
                let (body, _) = OIPCodec.encodeResponse(model: loaded.name, version: loaded.version, id: nil, outputs: ordered, binary: { _ in false })
                print(String(decoding: body, as: UTF8.self))
                return
            }
            for (name, tensor) in ordered {
                print("\(name)  \(tensor.dtype.rawValue)\(tensor.shape)")
                print(jsonText(tensor))
            }
        }
    }
}
