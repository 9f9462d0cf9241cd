#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Prometheus
import Synchronization
import VesselModel
import VesselSystem

/// The server's Prometheus metrics, served at `/metrics` in the text format. Each label set's
/// metrics are looked up in the registry once and kept: the registry validates names and builds
/// keys on every lookup, which was a tenth of a small request's time.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)
    ]

    /// One model version's metrics.
    private struct ModelMetrics {
        var queue: DurationHistogram
        var compute: DurationHistogram
        var total: DurationHistogram
        var batch: ValueHistogram
        var inFlight: Gauge
        var queued: Gauge
    }

    private struct Key: Hashable {
        var model: String
        var version: String
    }

    private let models = Mutex<[Key: ModelMetrics]>([:])
    private let requests = Mutex<[Key: [Int: Counter]]>([:])

    private func descriptor(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "vessel", metricName: name, unitName: unit, helpText: help)
    }

    private func metrics(_ model: String, _ version: String) -> ModelMetrics {
        let key = Key(model: model, version: version)
        if let found = models.withLock({ $0[key] }) { return found }
        let labels = [("model", model), ("version", version)]
        func latency(_ stage: String) -> DurationHistogram {
            registry.makeDurationHistogram(
                descriptor: descriptor("inference_\(stage)_duration", "seconds", "Inference \(stage) time"),
                labels: labels, buckets: latencyBuckets)
        }
        let made = ModelMetrics(
            queue: latency("queue"), compute: latency("compute"), total: latency("total"),
            batch: registry.makeValueHistogram(
                descriptor: descriptor("inference_batch_size", "rows", "Rows per inference run"),
                labels: labels, buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 1024]),
            inFlight: registry.makeGauge(descriptor: descriptor("inference_in_flight", "requests", "Requests running or queued"), labels: labels),
            queued: registry.makeGauge(
                descriptor: descriptor("inference_queued", "requests", "Requests waiting for a free slot (in flight beyond serving.max_concurrency)"),
                labels: labels))
        models.withLock { $0[key] = made }
        return made
    }

    func request(model: String, version: String, status: Int) {
        let key = Key(model: model, version: version)
        let counter =
            requests.withLock { $0[key]?[status] }
            ?? {
                let made = registry.makeCounter(
                    descriptor: descriptor("inference_requests", "total", "Inference requests by model, version and HTTP status"),
                    labels: [("model", model), ("version", version), ("status", String(status))])
                requests.withLock { $0[key, default: [:]][status] = made }
                return made
            }()
        counter.increment()
    }

    func latency(model: String, version: String, queue: Duration, compute: Duration, total: Duration) {
        let metrics = metrics(model, version)
        metrics.queue.record(queue)
        metrics.compute.record(compute)
        metrics.total.record(total)
    }

    func batch(model: String, version: String, size: Int) {
        metrics(model, version).batch.record(Double(size))
    }

    /// `count` requests in flight (running or waiting), `queued` of them waiting: read from the
    /// model's queue when /metrics is asked for, so the gauges are what the queue holds then.
    /// (Set by each request as it came and went, concurrent requests could leave a stale count.)
    func inFlight(model: String, version: String, _ count: Int, queued: Int) {
        let gauges = metrics(model, version)
        gauges.inFlight.set(Double(count))
        gauges.queued.set(Double(queued))
    }

    func loaded(model: String, version: String, seconds: Double) {
        registry.makeGauge(
            descriptor: descriptor("model_load_duration", "seconds", "Time to load, verify and warm up the model"),
            labels: [("model", model), ("version", version)]
        ).set(seconds)
    }

    private let restartsSeen = Mutex<[Key: Int]>([:])

    /// A backend's worker processes (the Python backend's), as of now: called before each scrape.
    func workers(model: String, version: String, _ status: WorkerStatus) {
        let labels = [("model", model), ("version", version)]
        registry.makeGauge(descriptor: descriptor("backend_workers", "", "Worker processes loaded and answering"), labels: labels)
            .set(Double(status.running))
        registry.makeGauge(
            descriptor: descriptor("backend_workers_configured", "", "Worker processes the model runs with (serving.max_concurrency)"),
            labels: labels
        ).set(Double(status.configured))
        registry.makeGauge(
            descriptor: descriptor("backend_worker_resident_memory", "bytes", "Resident memory of the model's worker processes"),
            labels: labels
        ).set(Double(status.residentBytes))
        let key = Key(model: model, version: version)
        let added = restartsSeen.withLock { seen -> Int in
            defer { seen[key] = status.restarts }
            return status.restarts - (seen[key] ?? 0)
        }
        let counter = registry.makeCounter(
            descriptor: descriptor("backend_worker_restarts", "total", "Worker processes replaced after a crash, hang, protocol error or memory limit"),
            labels: labels)
        if added > 0 { counter.increment(by: Int64(added)) }
    }

    func text() -> [UInt8] { registry.emitToBuffer() }
}

/// One JSON line per inference on standard output: time, request id, model, digest, input
/// shapes, batch size, queue and compute milliseconds, status, error. No payloads.
enum InferenceLog {
    struct Entry {
        var requestID: String
        var model: String
        var version: String
        var digest: String?
        var inputShapes: [(String, [Int])]
        var batchSize: Int
        var queueMilliseconds: Double
        var computeMilliseconds: Double
        var status: Int
        var error: String?
    }

    static func write(_ entry: Entry) {
        var line = "{\"time\":\(OIPCodec.quote(Date().formatted(.iso8601)))"
        line += ",\"request_id\":\(OIPCodec.quote(entry.requestID)),\"model\":\(OIPCodec.quote(entry.model))"
        line += ",\"version\":\(OIPCodec.quote(entry.version))"
        line += ",\"digest\":\(entry.digest.map(OIPCodec.quote) ?? "null")"
        line +=
            ",\"input_shapes\":{"
            + entry.inputShapes.map { "\(OIPCodec.quote($0.0)):[\($0.1.map(String.init).joined(separator: ","))]" }
            .joined(separator: ",") + "}"
        line += ",\"batch_size\":\(entry.batchSize)"
        line += ",\"queue_ms\":\(fixed(entry.queueMilliseconds)),\"compute_ms\":\(fixed(entry.computeMilliseconds))"
        line += ",\"status\":\(entry.status),\"error\":\(entry.error.map(OIPCodec.quote) ?? "null")}"
        StandardStreams.output(line)
    }
}
