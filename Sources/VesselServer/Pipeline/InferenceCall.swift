import HTTPTypes
import Hummingbird
import VesselManifest
import VesselModel
import VesselTensor

extension HTTPField.Name {
    static let inferenceHeaderContentLength = HTTPField.Name("Inference-Header-Content-Length")!
    static let requestID = HTTPField.Name("X-Request-ID")!
}

/// One inference request's bookkeeping, whichever transport carries it: its id, its log entry,
/// and the metrics and log line written exactly once when it is answered, whatever the answer.
final class InferenceCall {
    let server: InferenceServer
    let requestID: String
    let started = ContinuousClock().now
    var entry: InferenceLog.Entry

    init(_ server: InferenceServer, headers: HTTPFields, model: String, version: String?) {
        self.server = server
        requestID = headers[.requestID].flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 } ?? Self.randomID()
        entry = InferenceLog.Entry(
            requestID: requestID, model: model, version: version ?? "", digest: nil, inputShapes: [], batchSize: 0,
            queueMilliseconds: 0, computeMilliseconds: 0, status: 200, error: nil)
        server.idleMemory.began()
    }

    /// A random (version 4) UUID, lowercase. Foundation's `UUID()` opened and read
    /// /dev/urandom on every call here: a seventh of a small request's time.
    static func randomID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() as UInt64) & 0xFFFF_FFFF_FFFF_0FFF | 0x4000
        let low = (generator.next() as UInt64) & 0x3FFF_FFFF_FFFF_FFFF | 0x8000_0000_0000_0000
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 8 || index == 12 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int((high >> UInt64(shift)) & 0xF)])
        }
        for (index, shift) in stride(from: 60, through: 0, by: -4).enumerated() {
            if index == 0 || index == 4 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int((low >> UInt64(shift)) & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The model it runs on, for the log.
    func uses(_ model: ReadyModel) {
        entry.version = model.loaded.version
        entry.digest = model.loaded.digest
    }

    /// Inputs as decoded: their shapes and rows for the log.
    func received(_ request: DecodedInference, signature: Signature) {
        entry.inputShapes = request.order.map { ($0, request.inputs[$0]?.shape ?? []) }
        entry.batchSize = signature.inputs.first.flatMap { request.inputs[$0.name]?.shape.first } ?? 1
    }

    /// A run that finished: its times in the log and the latency and batch metrics.
    func ran(_ model: ReadyModel, _ outcome: Batcher.Outcome) {
        entry.batchSize = outcome.batchRows
        entry.queueMilliseconds = outcome.waited.milliseconds
        entry.computeMilliseconds = outcome.computed.milliseconds
        let (name, version) = (model.served.name, model.loaded.version)
        server.metrics.latency(model: name, version: version, queue: outcome.waited, compute: outcome.computed, total: ContinuousClock().now - started)
        server.metrics.batch(model: name, version: version, size: entry.batchSize)
    }

    /// Counts the answer and writes the log line.
    func record(_ status: Int, error: String? = nil) {
        server.idleMemory.ended()
        entry.status = status
        entry.error = error
        let labels = server.metricLabels(model: entry.model, version: entry.version)
        server.metrics.request(model: labels.model, version: labels.version, status: status)
        if server.configuration.logInferences { InferenceLog.write(entry) }
    }

    /// The router's answer: the response, counted, with the request id.
    func finish(_ response: Response) -> Response {
        var response = response
        response.headers[.requestID] = requestID
        record(Int(response.status.code))
        return response
    }

    /// The router's answer to a failure, counted and logged: `{"error": …}`, or a transport's
    /// own `body` (Cog's).
    func fail(_ error: RequestError, body: String? = nil) -> Response {
        var response = InferenceServer.error(error, body: body)
        response.headers[.requestID] = requestID
        record(error.status, error: error.description)
        return response
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
