import Foundation
import Synchronization
import Testing
@testable import VesselServer
import VesselModel
import VesselModelSources
import VesselTensor
import VesselTestSupport
import VesselSystem

/// The threads an in-process test server's tasks run on. Swift Testing runs synchronous tests
/// (every one that waits for a `vessel` subprocess) on the cooperative pool, one thread per
/// core, so two of them at once would leave a server in this process no thread to answer on:
/// with its own threads it answers as a server in its own process does.
final class ServerThreads: TaskExecutor {
    static let shared = ServerThreads()
    /// Jobs are many and short; a thread that finished one sleeps at once rather than spin.
    private let threads = BlockingThreads(spin: .zero)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        threads.submit { job.runSynchronously(on: executor) }
    }
}

/// A server on a loopback ephemeral port, in this process, its tasks on ``ServerThreads``.
struct RunningServer {
    let server: InferenceServer
    let port: Int
    let task: Task<Void, any Error>

    static func start(
        _ directories: [String], maxBodyBytes: Int? = nil, token: String? = nil,
        inlineBudget: Duration = .microseconds(100), fastLane: Bool = true,
        idleTimeout: Duration = .seconds(30)
    ) async throws -> RunningServer {
        let sources = try directories.map { try ModelSource.directory($0) }
        var configuration = ServerConfiguration(port: 0, maxBodyBytes: maxBodyBytes, logInferences: false, announce: false, token: token)
        configuration.inlineBudget = inlineBudget
        configuration.fastLane = fastLane
        configuration.idleTimeout = idleTimeout
        let server = InferenceServer(sources: sources, names: try InferenceServer.servedNames(sources), configuration: configuration)
        let task = Task(executorPreference: ServerThreads.shared) { try await server.run() }
        let bound = await server.boundPort()
        // Ready once every model has loaded and passed its examples (or failed).
        await server.modelsLoaded()
        return RunningServer(server: server, port: bound, task: task)
    }

    func request(_ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = []) async throws -> LoopbackClient.Response {
        let port = port
        return try await BlockingThreads.shared.run { Result { try LoopbackClient.request(method, port: port, path: path, headers: headers, body: body) } }
            .get()
    }

    func infer(_ json: String, model: String = "iris", headers: [String: String] = ["Content-Type": "application/json"]) async throws -> LoopbackClient.Response
    {
        try await request("POST", "/v2/models/\(model)/infer", headers: headers, body: Array(json.utf8))
    }

    func stop() async {
        await server.shutdown()
        _ = try? await task.value
    }

    /// `count` one-row iris requests at once, request k sending `rows[k % rows.count]`:
    /// (k, status, predicted label) for each.
    func classifyConcurrently(_ rows: [[Double]], count: Int) async throws -> [(Int, Int, Int?)] {
        try await withThrowingTaskGroup(of: (Int, Int, Int?).self) { group in
            for k in 0..<count {
                group.addTask {
                    let row = rows[k % rows.count]
                    let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[\#(row.map { String($0) }.joined(separator: ","))]}]}"#
                    let response = try await infer(body)
                    let label = ((jsonObject(response)["outputs"] as? [[String: Any]])?.first?["data"] as? [Int])?.first
                    return (k, response.status, label)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }
}

/// A copy of the bundled iris example under `parent` with other batching settings.
func irisCopy(in parent: String, maxBatchSize: Int, maxDelayMilliseconds: Int) throws -> String {
    let directory = try TestSupport.copyExample(to: parent)
    let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
    try yaml.replacingOccurrences(of: "max_batch_size: 32", with: "max_batch_size: \(maxBatchSize)")
        .replacingOccurrences(of: "max_delay_ms: 2", with: "max_delay_ms: \(maxDelayMilliseconds)")
        .write(toFile: directory + "/vessel.yaml", atomically: true, encoding: .utf8)
    return directory
}

func jsonObject(_ response: LoopbackClient.Response) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
}

@Suite("OIP v2 server")
struct ServerTests {
    @Test("health, server and model metadata, readiness, JSON inference, metrics")
    func basics() async throws {
        let running = try await RunningServer.start([TestSupport.exampleDirectory])
        defer { Task { await running.stop() } }
        #expect(try await running.request("GET", "/v2/health/live").status == 200)
        #expect(try await running.request("GET", "/v2/health/ready").status == 200)
        let server = jsonObject(try await running.request("GET", "/v2"))
        #expect(server["name"] as? String == "vessel")
        #expect((server["extensions"] as? [String])?.contains("binary_tensor_data") == true)
        let metadata = jsonObject(try await running.request("GET", "/v2/models/iris"))
        #expect(metadata["versions"] as? [String] == ["1.0.0"])
        #expect(metadata["platform"] as? String == "onnx")
        let inputs = metadata["inputs"] as? [[String: Any]]
        #expect(inputs?.first?["datatype"] as? String == "FP32")
        #expect(inputs?.first?["shape"] as? [Int] == [-1, 4])
        #expect(try await running.request("GET", "/v2/models/iris/versions/1.0.0").status == 200)
        #expect(try await running.request("GET", "/v2/models/iris/versions/9.9.9").status == 404)
        #expect(try await running.request("GET", "/v2/models/iris/ready").status == 200)

        // Nested and flat data, the request id echoed.
        let response = try await running.infer(
            #"{"id":"r1","inputs":[{"name":"X","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}]}"#,
            headers: ["Content-Type": "application/json", "X-Request-ID": "abc-123"])
        #expect(response.status == 200, "\(response.text)")
        #expect(response.headers["x-request-id"] == "abc-123")
        let body = jsonObject(response)
        #expect(body["id"] as? String == "r1")
        #expect(body["model_name"] as? String == "iris")
        let outputs = body["outputs"] as? [[String: Any]] ?? []
        // iris's `labels` postprocess step adds `species` (BYTES) beside the model's outputs.
        #expect(outputs.map { $0["name"] as? String } == ["label", "probabilities", "species"])
        #expect(outputs.first?["data"] as? [Int] == [0, 2])
        #expect(outputs.last?["data"] as? [String] == ["setosa", "virginica"] && outputs.last?["datatype"] as? String == "BYTES")
        let flat = try await running.infer(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[7.0,3.2,4.7,1.4]}],"outputs":[{"name":"label"}]}"#)
        let flatOutputs = jsonObject(flat)["outputs"] as? [[String: Any]] ?? []
        #expect(flatOutputs.count == 1 && flatOutputs.first?["data"] as? [Int] == [1], "\(flat.text)")
        #expect(flat.headers["x-request-id"]?.count == 36)

        // Clients that ask before sending a body (curl past 1 MiB) get 100 Continue, then the answer.
        let asked = try await running.request(
            "POST", "/v2/models/iris/infer", headers: ["Content-Type": "application/json", "Expect": "100-continue"],
            body: Array(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[7.0,3.2,4.7,1.4]}]}"#.utf8))
        #expect(asked.interim == [100] && asked.status == 200, "\(asked.interim) \(asked.status)")

        let metrics = try await running.request("GET", "/metrics").text
        #expect(metrics.contains(#"vessel_inference_requests_total{model="iris",version="1.0.0",status="200"} 3"#))
        #expect(metrics.contains("vessel_inference_compute_duration_seconds_bucket"))
        #expect(metrics.contains("vessel_model_load_duration_seconds"))
    }

    @Test("binary tensor data in and out")
    func binary() async throws {
        let running = try await RunningServer.start([TestSupport.exampleDirectory])
        defer { Task { await running.stop() } }
        let values: [Float] = [5.1, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5]
        let raw = values.withUnsafeBytes { Array($0) }
        let header = Array(
            #"{"inputs":[{"name":"X","shape":[2,4],"datatype":"FP32","parameters":{"binary_data_size":32}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}},{"name":"label"}]}"#
                .utf8)
        let response = try await running.request(
            "POST", "/v2/models/iris/infer",
            headers: ["Inference-Header-Content-Length": String(header.count), "Content-Type": "application/octet-stream"],
            body: header + raw)
        #expect(response.status == 200, "\(response.text)")
        let jsonLength = try #require(Int(response.headers["inference-header-content-length"] ?? ""))
        let json = try JSONSerialization.jsonObject(with: Data(response.body[0..<jsonLength])) as? [String: Any]
        let outputs = json?["outputs"] as? [[String: Any]] ?? []
        #expect((outputs.first?["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 24)
        #expect(outputs.last?["data"] as? [Int] == [0, 2])
        let probabilities = Array(response.body[jsonLength...]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(probabilities.count == 6 && abs(probabilities[0] - 0.9847031) < 1e-5 && abs(probabilities[5] - 0.99378246) < 1e-5)
    }

    @Test(
        "every bad request gets its 4xx and an error naming the input",
        arguments: [
            (#"{"inputs":[{"name":"Y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#, 400, "unknown input `Y`; the model's inputs are X"),
            (#"{"inputs":[]}"#, 400, "missing input `X`"),
            (#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]}]}"#, 400, "input `X`: expected datatype FP32, got FP64"),
            (#"{"inputs":[{"name":"X","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#, 400, "input `X`: expected shape [batch, 4], got [1, 3]"),
            (#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}"#, 400, "input `X`: shape [1, 4] holds 4 elements but `data` has 3"),
            (#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,"two",3,4]}]}"#, 400, "input `X`: element 1 is \"two\", not a number"),
            (
                #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,"NaN",3,4]}]}"#, 400,
                "input `X`: element 1 is nan; NaN and infinity are not allowed"
            ),
            (#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP99","data":[1,2,3,4]}]}"#, 400, "input `X`: unknown datatype `FP99`"),
            (#"{"inputs":[{"name":"X","shape":[1,-4],"datatype":"FP32","data":[1,2,3,4]}]}"#, 400, "must hold non-negative integers"),
            (#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"outputs":[{"name":"nope"}]}"#, 400, "unknown output `nope`"),
            (#"{"inputs": [{"name": "X""#, 400, "not valid JSON"),
            (#"[1, 2]"#, 400, "must be a JSON object")
        ])
    func badRequests(body: String, status: Int, message: String) async throws {
        let running = try await RunningServer.start([TestSupport.exampleDirectory])
        defer { Task { await running.stop() } }
        let response = try await running.infer(body)
        #expect(response.status == status, "\(response.text)")
        let error = jsonObject(response)["error"] as? String ?? ""
        #expect(error.contains(message), "\(error)")
        // The server stays up and answers the next request.
        #expect(try await running.request("GET", "/v2/health/live").status == 200)
    }

    @Test("unknown model 404, wrong content type 415, body over the limit 413")
    func statusCodes() async throws {
        let running = try await RunningServer.start([TestSupport.exampleDirectory], maxBodyBytes: 200)
        defer { Task { await running.stop() } }
        let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#
        let unknown = try await running.infer(body, model: "nope")
        #expect(unknown.status == 404)
        #expect((jsonObject(unknown)["error"] as? String)?.contains("unknown model `nope`; this server serves iris") == true)
        let form = try await running.infer(body, headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(form.status == 415, "\(form.text)")
        let large = try await running.infer(
            #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}],"pad":""# + String(repeating: " ", count: 300) + "\"}")
        #expect(large.status == 413, "\(large.text)")
        #expect((jsonObject(large)["error"] as? String)?.contains("larger than 200 bytes") == true)
        #expect(try await running.infer(body).status == 200)
    }
}

@Suite("OIP v2 server under load")
struct LoadTests {
    @Test("past max_concurrency + max_queue, requests get 503 with Retry-After at once, and the rest succeed")
    func overload() async throws {
        let directory = try TestSupport.makeSlowModel(maxConcurrency: 1, maxQueue: 1)
        defer { TestSupport.remove(directory) }
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }
        let (headers, body) = TestSupport.slowModelRequest(rows: 2048)
        let statuses = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for _ in 0..<6 {
                group.addTask {
                    let response = try await running.request("POST", "/v2/models/slow/infer", headers: headers, body: body)
                    return (response.status, response.headers["retry-after"])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let refused = statuses.filter { $0.0 == 503 }
        #expect(statuses.filter { $0.0 == 200 }.count >= 2, "\(statuses)")
        #expect(!refused.isEmpty, "\(statuses)")
        #expect(refused.allSatisfy { $0.1 == "1" })
        #expect(statuses.allSatisfy { $0.0 == 200 || $0.0 == 503 })
    }
}

@Suite("MLflow scoring protocol and bearer auth")
struct AdapterTests {
    static let iris = TestSupport.exampleDirectory

    @Test("dataframe_split, dataframe_records, instances and inputs all predict; /ping, /health, /version")
    func mlflowFormats() async throws {
        let running = try await RunningServer.start([Self.iris])
        defer { Task { await running.stop() } }
        let bodies = [
            #"{"dataframe_split":{"columns":["a","b","c","d"],"data":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}}"#,
            #"{"dataframe_records":[{"a":5.1,"b":3.5,"c":1.4,"d":0.2},{"a":6.3,"b":3.3,"c":6.0,"d":2.5}]}"#,
            #"{"instances":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}"#,
            #"{"inputs":{"X":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}}"#,
            #"{"inputs":[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]}"#
        ]
        for body in bodies {
            let response = try await running.request("POST", "/invocations", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
            #expect(response.status == 200, "\(body): \(response.text)")
            let predictions = jsonObject(response)["predictions"] as? [String: Any]
            #expect(predictions?["label"] as? [Int] == [0, 2], "\(body): \(response.text)")
            #expect((predictions?["probabilities"] as? [[Double]])?.count == 2)
        }
        for (body, message) in [
            (#"{"instances":[[1,2,3]]}"#, "input `X`: expected shape [batch, 4], got [1, 3]"),
            (#"{"instances":[[1,2,3,4]],"inputs":[[1,2,3,4]]}"#, "give exactly one of"),
            (#"{"dataframe_split":{"columns":["a","b","c"],"data":[[1,2,3]]}}"#, "takes 4 features per row, the dataframe has 3 columns"),
            (#"{"inputs":{"Y":[[1,2,3,4]]}}"#, "unknown input `Y`")
        ] {
            let response = try await running.request("POST", "/invocations", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
            #expect(response.status == 400, "\(body): \(response.text)")
            #expect((jsonObject(response)["error"] as? String)?.contains(message) == true, "\(body): \(response.text)")
        }
        #expect(try await running.request("GET", "/ping").status == 200)
        #expect(try await running.request("GET", "/health").status == 200)
        #expect(try await running.request("GET", "/version").text == InferenceServer.version)
        let openapi = jsonObject(try await running.request("GET", "/openapi.json"))
        #expect(openapi["openapi"] as? String == "3.0.3")
        let paths = openapi["paths"] as? [String: Any] ?? [:]
        #expect(paths["/v2/models/iris/infer"] != nil && paths["/invocations"] != nil)
        let infer = (paths["/v2/models/iris/infer"] as? [String: Any])?["post"] as? [String: Any]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: infer ?? [:]), as: UTF8.self)
        #expect(text.contains(#""enum":["FP32"]"#) && text.contains(#""enum":["probabilities"]"#) || text.contains("probabilities"), "\(text)")
    }

    @Test("string categories through MLflow dataframes")
    func mlflowStrings() async throws {
        let directory = try TestSupport.makeTemporaryDirectory("onehot")
        defer { TestSupport.remove(directory) }
        try FileManager.default.copyItem(
            atPath: TestSupport.packageRoot + "/Tests/VesselONNXTests/Fixtures/ml/column_transformer_onehot/model.onnx",
            toPath: directory + "/model.onnx")
        try """
        schemaVersion: 1
        name: colors
        version: "2"
        model: {format: onnx, file: model.onnx}
        signature:
          inputs: [{name: cat, dtype: string, shape: [batch, 2]}]
          outputs: [{name: label, dtype: int64, shape: [batch]}, {name: probabilities, dtype: float32, shape: [batch, 3]}]
        """.write(toFile: directory + "/vessel.yaml", atomically: true, encoding: .utf8)
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }
        let body = #"{"dataframe_split":{"columns":["color","size"],"data":[["red","S"],["black","XL"]]}}"#
        let response = try await running.request("POST", "/invocations", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
        #expect(response.status == 200, "\(response.text)")
        let labels = (jsonObject(response)["predictions"] as? [String: Any])?["label"] as? [Int]
        #expect(labels?.count == 2)
        let oip = try await running.infer(#"{"inputs":[{"name":"cat","shape":[1,2],"datatype":"BYTES","data":["red","S"]}]}"#, model: "colors")
        #expect(oip.status == 200, "\(oip.text)")
        #expect((jsonObject(oip)["outputs"] as? [[String: Any]])?.first?["data"] as? [Int] == labels.map { [$0[0]] })
    }

    @Test("with --token-file, everything but the health checks needs the bearer token")
    func bearer() async throws {
        let running = try await RunningServer.start([Self.iris], token: "s3cret-token")
        defer { Task { await running.stop() } }
        #expect(try await running.request("GET", "/v2/health/live").status == 200)
        #expect(try await running.request("GET", "/v2/health/ready").status == 200)
        let missing = try await running.request("GET", "/v2/models/iris")
        #expect(missing.status == 401)
        #expect(missing.headers["www-authenticate"] == "Bearer")
        #expect(try await running.request("GET", "/v2/models/iris", headers: ["Authorization": "Bearer s3cret-tokem"]).status == 401)
        #expect(try await running.request("GET", "/v2/models/iris", headers: ["Authorization": "Bearer s3cret-token"]).status == 200)
        #expect(try await running.request("GET", "/metrics").status == 401)
        let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#
        #expect(try await running.infer(body).status == 401)
        #expect(try await running.infer(body, headers: ["Content-Type": "application/json", "Authorization": "Bearer s3cret-token"]).status == 200)
        #expect(Tokens.constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!Tokens.constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
    }
}

@Suite("request deadlines")
struct TimeoutTests {
    @Test("past serving.timeout_ms a request gets 504, waiters leave the queue, and the server recovers")
    func deadline() async throws {
        let directory = try TestSupport.makeSlowModel(maxConcurrency: 1, maxQueue: 8, timeoutMilliseconds: 30)
        defer { TestSupport.remove(directory) }
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }
        let (headers, body) = TestSupport.slowModelRequest(rows: 4096)
        let statuses = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for _ in 0..<4 {
                group.addTask {
                    let response = try await running.request("POST", "/v2/models/slow/infer", headers: headers, body: body)
                    return (response.status, response.text)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Each takes longer than 30 ms to compute, so each is late, whether the timer fires in
        // time or the result arrives after the deadline.
        let timedOut = statuses.filter { $0.0 == 504 }
        #expect(timedOut.count == 4, "\(statuses.map(\.0))")
        #expect(timedOut.allSatisfy { $0.1.contains("longer than serving.timeout_ms (30 ms)") })
        // Once the running one finishes, the queue is empty and a small request gets through.
        let small = TestSupport.slowModelRequest(rows: 1)
        var status = 0
        for _ in 0..<100 {
            status = try await running.request("POST", "/v2/models/slow/infer", headers: small.headers, body: small.body).status
            if status == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(status == 200)
        let metrics = try await running.request("GET", "/metrics").text
        // Every 504, including small requests that waited behind the big one, is counted.
        let line = metrics.split(separator: "\n").first { $0.hasPrefix(#"vessel_inference_requests_total{model="slow",version="1",status="504"}"#) }
        #expect((line?.split(separator: " ").last).flatMap { Int($0) }.map { $0 >= timedOut.count } == true, "\(metrics)")
    }
}

@Suite("dynamic batching")
struct BatchingTests {
    @Test("a model whose examples take microseconds runs small requests without a thread hop; slots come back; large ones still queue")
    func inline() async throws {
        let copy = try TestSupport.makeTemporaryDirectory("inline")
        defer { TestSupport.remove(copy) }
        let directory = try irisCopy(in: copy, maxBatchSize: 1, maxDelayMilliseconds: 0)
        // A budget no machine misses, so the test does not depend on this one's speed.
        let running = try await RunningServer.start([directory], inlineBudget: .seconds(10))
        defer { Task { await running.stop() } }
        guard case .ready(_, let queue, nil) = running.server.models[0].current else {
            Issue.record("not ready without a batcher: \(running.server.models[0].current)")
            return
        }
        // The examples are one row of 4 floats each: requests up to 16 elements run inline.
        #expect(queue.inlineElements == 16)
        let rows: [[Double]] = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5]]
        let results = try await running.classifyConcurrently(rows, count: 24)
        #expect(results.allSatisfy { $0.1 == 200 && $0.2 == $0.0 % 3 }, "\(results)")
        // 64 rows (256 elements) take the worker path, and answer the same.
        let many = (0..<64).flatMap { rows[$0 % 3] }.map { String($0) }.joined(separator: ",")
        let big = try await running.infer(#"{"inputs":[{"name":"X","shape":[64,4],"datatype":"FP32","data":[\#(many)]}]}"#)
        #expect(big.status == 200)
        #expect(((jsonObject(big)["outputs"] as? [[String: Any]])?.first?["data"] as? [Int]) == (0..<64).map { $0 % 3 })
        #expect(queue.inFlight == 0)
        #expect(queue.tryAcquire())
        queue.release()
    }

    @Test("a lone request to an idle batching model takes the fast lane, as it would without batching")
    func loneRequestSkipsTheBatcher() async throws {
        let copy = try TestSupport.makeTemporaryDirectory("batching-lone")
        defer { TestSupport.remove(copy) }
        let directory = try irisCopy(in: copy, maxBatchSize: 32, maxDelayMilliseconds: 600_000)
        let running = try await RunningServer.start([directory], inlineBudget: .seconds(10))
        defer { Task { await running.stop() } }
        guard case .ready(_, _, let batcher?) = running.server.models[0].current else {
            Issue.record("not ready with a batcher: \(running.server.models[0].current)")
            return
        }
        for k in 0..<3 {
            let response = try await running.infer(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#)
            #expect(response.status == 200)
            #expect(running.server.fastLaneAnswers.load(ordering: .relaxed) == k + 1)
        }
        #expect(batcher.waitingRequests == 0)
    }

    @Test("concurrent requests to a batching model each get their own rows back, and none waits out max_delay")
    func merges() async throws {
        let copy = try TestSupport.makeTemporaryDirectory("batching")
        defer { TestSupport.remove(copy) }
        // How requests merge is BatcherTests' business (with a model held busy on purpose); here
        // the whole path through HTTP. A request waits for company only while the model is busy,
        // so the long delay is never waited out.
        let directory = try irisCopy(in: copy, maxBatchSize: 4, maxDelayMilliseconds: 600_000)
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }
        let rows: [[Double]] = [[5.1, 3.5, 1.4, 0.2], [7.0, 3.2, 4.7, 1.4], [6.3, 3.3, 6.0, 2.5], [4.9, 3.0, 1.4, 0.2]]
        let expected = [0, 1, 2, 0]
        let results = try await running.classifyConcurrently(rows, count: 8)
        for (k, status, label) in results {
            #expect(status == 200)
            #expect(label == expected[k % 4], "request \(k)")
        }
        let metrics = try await running.request("GET", "/metrics").text
        // Eight requests, each in a batch of at most four rows.
        #expect(metrics.contains(#"vessel_inference_batch_size_rows_bucket{model="iris",version="1.0.0",le="4.0"} 8"#), "\(metrics)")
    }
}
