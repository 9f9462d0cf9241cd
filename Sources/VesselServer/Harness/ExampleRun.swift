import VesselJSON
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import VesselManifest
public import VesselModel
import VesselTensor
import VesselSystem

/// Runs a model's bundled examples the way clients reach it: a real server on a loopback
/// ephemeral port, one OIP v2 JSON request per example, outputs compared with the example's
/// tolerances. Used by `vessel test` and by `vessel pack` before it stores anything.
public enum ExampleRun {
    public struct Row: Sendable {
        public var example: String
        public var output: String
        public var comparison: OutputComparison
    }

    public struct Report: Sendable {
        public var model: String
        public var version: String
        public var rows: [Row]
        /// Set when the model could not be served at all.
        public var failure: String?
        public var passed: Bool { failure == nil && rows.allSatisfy(\.comparison.passed) }
    }

    public static func run(_ source: ModelSource) async -> Report {
        let names: [String]
        do { names = try InferenceServer.servedNames([source]) } catch {
            return Report(model: "?", version: "?", rows: [], failure: "\(error)")
        }
        let server = InferenceServer(
            sources: [source], names: names,
            configuration: ServerConfiguration(
                host: "127.0.0.1", port: 0, shutdownGrace: .seconds(5), logInferences: false, announce: false,
                warmUpWithExamples: false))
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        // The server loads the model after it listens; wait for it to be ready or failed.
        let port = await server.boundPort()
        await server.modelsLoaded()
        let report = await BlockingThreads.shared.run { () -> Report in
            let model = server.models[0]
            guard port != 0 else { return Report(model: model.name, version: "?", rows: [], failure: "the server did not start") }
            guard case .ready(let loaded, _, _) = model.current else {
                if case .failed(let reason) = model.current { return Report(model: model.name, version: "?", rows: [], failure: reason) }
                return Report(model: model.name, version: "?", rows: [], failure: "not ready")
            }
            do {
                return over(
                    port: port, model: model.name, version: loaded.version, examples: try loaded.examples(),
                    inputOrder: loaded.signature.inputs.map(\.name))
            } catch {
                return Report(model: model.name, version: loaded.version, rows: [], failure: "\(error)")
            }
        }
        await server.shutdown()
        _ = try? await serving.value
        return report
    }

    /// Sends each example to a server already listening on a loopback `port` (blocking), one
    /// OIP v2 JSON request each, and compares the outputs.
    public static func over(port: Int, model: String, version: String, examples: [LoadedExample], inputOrder: [String]) -> Report {
        var rows: [Row] = []
        do {
            for example in examples {
                let body = requestBody(example.inputs, order: inputOrder)
                let response = try LoopbackClient.request(
                    "POST", port: port, path: "/v2/models/\(model)/infer",
                    headers: ["Content-Type": "application/json"], body: body)
                guard response.status == 200 else {
                    return Report(model: model, version: version, rows: rows, failure: "example `\(example.name)`: HTTP \(response.status): \(response.text)")
                }
                let outputs = try decodeOutputs(response.body)
                for (name, expected) in example.outputs.sorted(by: { $0.key < $1.key }) {
                    rows.append(
                        Row(
                            example: example.name, output: name,
                            comparison: .compare(name, actual: outputs[name], expected: expected, rtol: example.rtol, atol: example.atol)))
                }
            }
        } catch {
            return Report(model: model, version: version, rows: rows, failure: "\(error)")
        }
        return Report(model: model, version: version, rows: rows, failure: nil)
    }

    static func requestBody(_ inputs: [String: Tensor], order: [String]) -> [UInt8] {
        let items = order.compactMap { name -> String? in
            guard let tensor = inputs[name] else { return nil }
            return
                "{\"name\":\(OIPCodec.quote(name)),\"datatype\":\"\(tensor.dtype.oipName)\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],\"data\":[\(OIPCodec.jsonElements(tensor))]}"
        }
        return Array("{\"inputs\":[\(items.joined(separator: ","))]}".utf8)
    }

    static func decodeOutputs(_ body: [UInt8]) throws -> [String: Tensor] {
        guard let object = try FastJSON.parse(body[...]).foundation as? [String: Any],
            let outputs = object["outputs"] as? [[String: Any]]
        else { throw RequestError(500, "the response has no outputs") }
        var result: [String: Tensor] = [:]
        for output in outputs {
            guard let name = output["name"] as? String, let datatype = output["datatype"] as? String, let dtype = DType.oip(datatype),
                let dims = output["shape"] as? [Any], let data = output["data"]
            else { continue }
            let shape = dims.compactMap { ($0 as? Double).map { Int($0) } }
            result[name] = try OIPCodec.jsonTensor(data, dtype: dtype, shape: shape, count: shape.reduce(1, *), name: name)
        }
        return result
    }
}
