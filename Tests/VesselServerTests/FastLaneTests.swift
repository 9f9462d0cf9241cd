import Foundation
import Synchronization
import Testing
@testable import VesselServer
import VesselTestSupport
import VesselSystem

@Suite("fast lane")
struct FastLaneTests {
    @Test("small inference requests answered on the event loop get what the router gives: status, body, headers, metrics")
    func sameAsRouter() async throws {
        // Without dynamic batching, and with a budget no machine misses, both servers run iris inline.
        let copy = try TestSupport.makeTemporaryDirectory("fast-lane")
        defer { TestSupport.remove(copy) }
        let directory = try irisCopy(in: copy, maxBatchSize: 1, maxDelayMilliseconds: 0)
        let fast = try await RunningServer.start([directory], inlineBudget: .seconds(10))
        let routed = try await RunningServer.start([directory], inlineBudget: .seconds(10), fastLane: false)
        defer {
            Task {
                await fast.stop()
                await routed.stop()
            }
        }
        let json = ["Content-Type": "application/json"]
        let one = #"{"id":"r1","inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#
        let cases: [(path: String, headers: [String: String], body: String, fastLane: Bool)] = [
            ("/v2/models/iris/infer", json, one, true),
            (
                "/v2/models/iris/infer", [:],
                #"{"inputs":[{"name":"X","shape":[3,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[7,3.2,4.7,1.4],[6.3,3.3,6,2.5]]}],"outputs":[{"name":"probabilities"}]}"#,
                true
            ),
            ("/v2/models/iris/versions/1.0.0/infer", json, one, true),
            ("/v2/models/iris/infer", json.merging(["X-Request-ID": "trace-7"]) { $1 }, one, true),
            // Everything below is the router's to answer.
            ("/v2/models/iris/versions/9/infer", json, one, false),
            ("/v2/models/nope/infer", json, one, false),
            ("/v2/models/iris/infer", json, #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"INT64","data":[5,3,1,0]}]}"#, false),
            ("/v2/models/iris/infer", json, #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,"NaN",1.4,0.2]}]}"#, false),
            ("/v2/models/iris/infer", json, #"{"inputs":[{"name":"X","shape":[1,3],"datatype":"FP32","data":[5.1,3.5,1.4]}]}"#, false),
            (
                "/v2/models/iris/infer", json,
                #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}],"outputs":[{"name":"nope"}]}"#, false
            ),
            (
                "/v2/models/iris/infer", json,
                #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}],"parameters":{"binary_data_output":true}}"#, false
            ),
            ("/v2/models/iris/infer", ["Content-Type": "text/plain"], one, false),
            ("/v2/models/iris/infer", json, "{not json", false),
            // 64 rows is past four times an example's size: the worker path.
            (
                "/v2/models/iris/infer", json,
                #"{"inputs":[{"name":"X","shape":[64,4],"datatype":"FP32","data":[\#((0..<256).map { _ in "1.5" }.joined(separator: ","))]}]}"#, false
            )
        ]
        var expectedFast = 0
        for (index, item) in cases.enumerated() {
            let before = fast.server.fastLaneAnswers.load(ordering: .relaxed)
            let a = try await fast.request("POST", item.path, headers: item.headers, body: Array(item.body.utf8))
            let b = try await routed.request("POST", item.path, headers: item.headers, body: Array(item.body.utf8))
            let took = fast.server.fastLaneAnswers.load(ordering: .relaxed) - before
            #expect(took == (item.fastLane ? 1 : 0), "case \(index): fast lane answered \(took)")
            if item.fastLane { expectedFast += 1 }
            #expect(a.status == b.status && a.body == b.body, "case \(index): \(a.status) \(a.text) vs \(b.status) \(b.text)")
            #expect(a.headers["content-type"] == b.headers["content-type"], "case \(index)")
            if let id = item.headers["X-Request-ID"] { #expect(a.headers["x-request-id"] == id && b.headers["x-request-id"] == id) }
            #expect(a.headers["x-request-id"]?.isEmpty == false, "case \(index)")
        }
        #expect(fast.server.fastLaneAnswers.load(ordering: .relaxed) == expectedFast)
        // The same counts by status, and a latency sample for every run.
        let fastMetrics = try await fast.request("GET", "/metrics").text, routedMetrics = try await routed.request("GET", "/metrics").text
        func lines(_ text: String) -> [String] {
            text.split(separator: "\n").map(String.init).filter {
                $0.hasPrefix("vessel_inference_requests_total") || $0.hasPrefix("vessel_inference_batch_size_rows_count")
                    || $0.hasPrefix("vessel_inference_compute_duration_seconds_count")
            }.sorted()
        }
        #expect(!lines(fastMetrics).isEmpty && lines(fastMetrics) == lines(routedMetrics), "\(lines(fastMetrics)) vs \(lines(routedMetrics))")
    }

    @Test("on one connection, answers come in the order asked: a request behind one the router is still answering waits its turn")
    func pipelined() async throws {
        let copy = try TestSupport.makeTemporaryDirectory("fast-lane-pipelined")
        defer { TestSupport.remove(copy) }
        let running = try await RunningServer.start([try irisCopy(in: copy, maxBatchSize: 1, maxDelayMilliseconds: 0)], inlineBudget: .seconds(10))
        defer { Task { await running.stop() } }
        let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[6.3,3.3,6.0,2.5]}]}"#
        let infer = { (extra: String) in
            "POST /v2/models/iris/infer HTTP/1.1\r\nHost: localhost\r\n\(extra)Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        }
        // Sent at once: the first inference is answered on the spot; the metadata request goes to
        // the router, and the inference behind it must not overtake it.
        let requests = infer("") + "GET /v2/models/iris HTTP/1.1\r\nHost: localhost\r\n\r\n" + infer("Connection: close\r\n")
        let port = running.port
        let received = try await BlockingThreads.shared.run { Result { try Self.exchange(port: port, Array(requests.utf8)) } }.get()
        let text = String(decoding: received, as: UTF8.self)
        let starts = text.ranges(of: "HTTP/1.1 200").map(\.lowerBound) + [text.endIndex]
        #expect(starts.count == 4, "\(text)")
        if starts.count == 4 {
            #expect(text[starts[0]..<starts[1]].contains("\"outputs\""), "\(text)")
            #expect(text[starts[1]..<starts[2]].contains("\"platform\""), "\(text)")
            #expect(text[starts[2]..<starts[3]].contains("\"outputs\""), "\(text)")
        }
        #expect(running.server.fastLaneAnswers.load(ordering: .relaxed) >= 1)
    }

    @Test("with a bearer token, only requests that carry it take the fast lane; the rest get the router's 401")
    func token() async throws {
        let copy = try TestSupport.makeTemporaryDirectory("fast-lane-token")
        defer { TestSupport.remove(copy) }
        let running = try await RunningServer.start(
            [try irisCopy(in: copy, maxBatchSize: 1, maxDelayMilliseconds: 0)], token: "s3cret",
            inlineBudget: .seconds(10))
        defer { Task { await running.stop() } }
        let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#
        for (header, status, taken) in [(nil, 401, 0), ("Bearer s3cre", 401, 0), ("Bearer s3cret", 200, 1), ("bearer s3cret", 200, 2), ("Basic s3cret", 401, 2)]
        {
            var headers = ["Content-Type": "application/json"]
            headers["Authorization"] = header
            let response = try await running.infer(body, headers: headers)
            #expect(response.status == status, "\(header ?? "none"): \(response.text)")
            #expect(running.server.fastLaneAnswers.load(ordering: .relaxed) == taken, "\(header ?? "none")")
        }
    }

    /// Sends bytes on one connection and reads until the server closes it; throws if it has not
    /// closed it within `seconds`.
    static func exchange(port: Int, _ bytes: [UInt8], seconds: Int = 20) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("cannot connect") }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw TestFailure("the connection was still open after \(seconds) s: \(String(decoding: received, as: UTF8.self))") }
            received += chunk[0..<n]
        }
        return received
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
