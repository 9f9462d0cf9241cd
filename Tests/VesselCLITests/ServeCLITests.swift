import Foundation
import Testing
import VesselServer
import VesselStore
import VesselTestSupport

/// `vessel serve` as a process: its port read from standard error, stopped by a signal.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    private let errors = Pipe(), output = Pipe()
    private let lock = NSLock()
    private var errorText = ""
    private var errorsClosed = false

    init(_ arguments: [String], home: String, environment: [String: String] = [:]) throws {
        try start(binary: TestSupport.vesselBinary, ["serve", "--port", "0", "--home", home] + arguments, environment: environment)
    }

    /// The image runtime (`vessel-runtime serve`), with `environment` added to this one.
    init(runtime arguments: [String], environment: [String: String]) throws {
        try start(binary: TestSupport.vesselBinary + "-runtime", ["serve", "--port", "0"] + arguments, environment: environment)
    }

    private func start(binary: String, _ arguments: [String], environment: [String: String]) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = errors
        process.standardOutput = output
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            if data.isEmpty {
                // End of file: the process and everything it started closed standard error.
                self.errorsClosed = true
                handle.readabilityHandler = nil
            } else {
                self.errorText += String(decoding: data, as: UTF8.self)
            }
            self.lock.unlock()
        }
        output.fileHandleForReading.readabilityHandler = { handle in _ = handle.availableData }
        try process.run()
    }

    var standardError: String {
        lock.lock()
        defer { lock.unlock() }
        return errorText
    }

    /// The bound port, once the server says it listens, after its models are ready.
    func waitForReady(_ pattern: String = "ready") throws -> Int {
        var port: Int?
        TestSupport.waitUntil(timeout: 30, gaveUp: { !process.isRunning }) {
            let text = standardError
            if text.contains(pattern), let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = text[range].split(separator: ":").last.flatMap { Int($0) }
            }
            return port != nil
        }
        guard let port else { throw TestFailure("vessel serve did not become ready: \(standardError)") }
        return port
    }

    /// The exit status, once standard error has been read to its end (the last lines can still
    /// be in the pipe when the process is reaped).
    func waitForExit() -> Int32 {
        process.waitUntilExit()
        TestSupport.waitUntil(timeout: 10) {
            lock.lock()
            defer { lock.unlock() }
            return errorsClosed
        }
        return process.terminationStatus
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One blocking HTTP request to the loopback server.
func post(port: Int, path: String, headers: [String: String], body: [UInt8]) throws -> (status: Int, text: String) {
    let response = try LoopbackClient.request("POST", port: port, path: path, headers: headers, body: body)
    return (response.status, response.text)
}

@Suite("vessel serve, test and pack --no-test")
struct ServeCLITests {
    @Test("SIGTERM: readiness turns false, requests in flight all finish, exit 0")
    func gracefulShutdown() async throws {
        let home = try TestSupport.makeTemporaryDirectory("serve-home")
        defer { TestSupport.remove(home) }
        let model = try TestSupport.makeSlowModel(maxConcurrency: 1, maxQueue: 16)
        defer { TestSupport.remove(model) }
        let server = try ServeProcess([model], home: home)
        let port = try server.waitForReady()
        let (headers, body) = TestSupport.slowModelRequest(rows: 4096)
        // Three slow requests queue up behind max_concurrency 1; SIGTERM arrives while they run.
        let results = ResultBox()
        let group = DispatchGroup()
        for _ in 0..<3 {
            group.enter()
            Thread {
                results.append((try? post(port: port, path: "/v2/models/slow/infer", headers: headers, body: body))?.status ?? -1)
                group.leave()
            }.start()
        }
        // SIGTERM once the server holds all three and is still working on one (its own gauges).
        var seen = ""
        let started = Date()
        let queued = TestSupport.waitUntil(timeout: 30) {
            guard let metrics = try? LoopbackClient.request("GET", port: port, path: "/metrics").text else { return false }
            let inFlight = TestSupport.metric("vessel_inference_in_flight_requests", in: metrics)
            let done = TestSupport.metric("vessel_inference_requests_total", in: metrics)
            seen += String(format: "%.2f s: in flight %g, done %g\n", Date().timeIntervalSince(started), inFlight, done)
            return inFlight >= 1 && inFlight + done == 3
        }
        #expect(queued, "the three requests were never all in: \(seen)")
        kill(server.process.processIdentifier, SIGTERM)
        group.wait()
        #expect(results.values == [200, 200, 200], "\(results.values) \(server.standardError)")
        #expect(server.waitForExit() == 0)
        #expect(server.standardError.contains("vessel: stopped"))
    }

    @Test(
        "more runs computing than cores (a Loop model, every slot busy): health, metrics and another model answer while they run"
    )
    func runsLeaveTheServerThreads() async throws {
        let home = try TestSupport.makeTemporaryDirectory("serve-busy-home")
        defer { TestSupport.remove(home) }
        // One more run than cores; each would run for two minutes (the server is killed once the
        // probes are answered), so all have started before any stops, however loaded the machine.
        let slots = ProcessInfo.processInfo.activeProcessorCount + 1
        let directory = try TestSupport.makeLoopModel(serving: "{timeout_ms: 120000, max_concurrency: \(slots), max_queue: 0}")
        defer { TestSupport.remove(directory) }
        let server = try ServeProcess([directory, TestSupport.exampleDirectory], home: home)
        defer { server.process.terminate() }
        let port = try server.waitForReady()
        let endless = Array(TestSupport.endlessLoopRequest.utf8)
        let results = ResultBox()
        let group = DispatchGroup()
        for _ in 0..<slots {
            group.enter()
            Thread {
                results.append(
                    (try? post(port: port, path: "/v2/models/loop/infer", headers: ["Content-Type": "application/json"], body: endless))?.status ?? -1)
                group.leave()
            }.start()
        }
        // Once the server's own gauge shows a run for every core, the probes must be answered
        // while those still run: an ordering, not a time. (Runs on the threads the server's
        // tasks need took every one of them, and the probes waited for the runs to end.)
        let cores = slots - 1
        var inFlight = 0.0
        TestSupport.waitUntil(timeout: 60, gaveUp: { !results.values.isEmpty }) {
            guard let metrics = try? LoopbackClient.request("GET", port: port, path: "/metrics").text else { return false }
            inFlight = TestSupport.metric("vessel_inference_in_flight_requests", in: metrics)
            return inFlight >= Double(cores)
        }
        #expect(inFlight >= Double(cores), "never saw \(cores) runs at once: \(results.values) \(server.standardError)")
        let live = try LoopbackClient.request("GET", port: port, path: "/v2/health/live")
        let iris = try post(
            port: port, path: "/v2/models/iris/infer", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#.utf8))
        let ended = results.values
        #expect(live.status == 200 && iris.status == 200, "\(iris.text)")
        #expect(ended.isEmpty, "the probes waited for the runs to end: \(ended)")
        kill(server.process.processIdentifier, SIGKILL)
        group.wait()
    }

    @Test("a model blob tampered with in the store: the server stays up and live, the model never ready, the error names the file")
    func tamperedStoreBlob() async throws {
        let home = try TestSupport.makeTemporaryDirectory("tampered-home")
        defer { TestSupport.remove(home) }
        let packed = try await TestSupport.vessel(["pack", TestSupport.exampleDirectory], home: home)
        #expect(packed.status == 0, "\(packed.standardError)")
        let store = try Store(root: home)
        let descriptor = try store.resolve(Reference(parsing: "iris:1.0.0"))
        let model = try #require(try store.closure(of: descriptor).first { $0.annotations?[OCIAnnotation.title] == "model.onnx" })
        try TestSupport.flipByte(in: store.blobPath(model.digest), at: 100)
        let server = try ServeProcess(["iris:1.0.0"], home: home)
        defer {
            kill(server.process.processIdentifier, SIGTERM)
            _ = server.waitForExit()
        }
        let port = try server.waitForReady("failed to load")
        // Refused for its digest (not, say, as a malformed model after the flip).
        #expect(server.standardError.contains("model.onnx") && server.standardError.contains(model.digest.description), "\(server.standardError)")
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/live", headers: [:], body: []).status == 200)
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/ready", headers: [:], body: []).status != 200)
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/models/iris/ready", headers: [:], body: []).status == 503)
    }

    @Test("vessel test runs the examples through a server and prints the table; pack refuses failing examples")
    func testAndPack() async throws {
        let home = try TestSupport.makeTemporaryDirectory("test-home")
        defer { TestSupport.remove(home) }
        let tested = try await TestSupport.vessel(["test", TestSupport.exampleDirectory], home: home)
        #expect(tested.status == 0, "\(tested.standardError)")
        #expect(tested.standardOutput.contains("virginica   probabilities"))
        #expect(tested.standardOutput.contains("9 output(s) of the examples passed"))

        // An example whose expected label is wrong: test fails, pack stores nothing.
        let copy = try TestSupport.makeTemporaryDirectory("broken-example")
        defer { TestSupport.remove(copy) }
        let directory = try TestSupport.copyExample(to: copy)
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        try yaml.replacingOccurrences(of: "label: [2]", with: "label: [1]").write(toFile: directory + "/vessel.yaml", atomically: true, encoding: .utf8)
        let failing = try await TestSupport.vessel(["test", directory], home: home)
        #expect(failing.status != 0)
        #expect(failing.standardOutput.contains("FAIL: element 0: 2.0, expected 1.0"), "\(failing.standardOutput)")
        let refused = try await TestSupport.vessel(["pack", directory], home: home)
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("the examples failed, so nothing was stored"))
        #expect(try await TestSupport.vessel(["list"], home: home).standardOutput.contains("iris") == false)
        // --no-test stores it, and says so in the artifact.
        let skipped = try await TestSupport.vessel(["pack", directory, "--no-test"], home: home)
        #expect(skipped.status == 0, "\(skipped.standardError)")
        let raw = try await TestSupport.run("skopeo", ["inspect", "--raw", "oci:\(home):iris:1.0.0"])
        #expect(raw.standardOutput.contains(#""dev.vessel.examples":"skipped""#), "\(raw.standardOutput)")
        let packed = try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "-t", "iris:good"], home: home)
        #expect(packed.status == 0, "\(packed.standardError)")
        let good = try await TestSupport.run("skopeo", ["inspect", "--raw", "oci:\(home):iris:good"])
        #expect(good.standardOutput.contains(#""dev.vessel.examples":"passed""#))
        // The stored artifact serves and passes too, under its vessel.yaml name whatever its tag.
        #expect(try await TestSupport.vessel(["tag", "iris:good", "team/classifier:v2"], home: home).status == 0)
        let retagged = try await TestSupport.vessel(["test", "team/classifier:v2"], home: home)
        #expect(retagged.status == 0, "\(retagged.standardError)")
        #expect(retagged.standardOutput.hasPrefix("iris 1.0.0"), "\(retagged.standardOutput)")
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func append(_ value: Int) { lock.lock(); list.append(value); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return list }
}
