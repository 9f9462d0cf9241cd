import Foundation
import Synchronization
import Testing
@testable import VesselServer
import VesselTensor
import VesselTestSupport
import VesselSystem

/// Requests that once took the server down or held it: each is now a 4xx (or a 504 that frees
/// its slot), and the server answers the next request.
@Suite("hostile requests")
struct HostileRequestTests {
    /// Shapes and sizes that trapped while being checked or formatted for the 400 message.
    static let hostileBodies: [String] = [
        #"{"inputs":[{"name":"X","shape":[9223372036854775807,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
        #"{"inputs":[{"name":"X","shape":[18446744073709551616,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
        #"{"inputs":[{"name":"X","shape":[1e300,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
        #"{"inputs":[{"name":"X","shape":[-1e19,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
        #"{"inputs":[{"name":"X","shape":[0,1099511627776,1099511627776],"datatype":"FP32","data":[]}]}"#,
        #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":9223372036854775808}}]}"#,
        #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":1e300}}]}"#,
        #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"INT64","data":[1e300,-1e300,1,2]}]}"#
    ]

    @Test("hostile shapes and sizes are a 400, not a trap", arguments: hostileBodies)
    func codec(_ body: String) {
        do {
            _ = try OIPCodec.decodeRequest(Array(body.utf8), headerLength: nil)
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.status == 400)
        }
    }

    @Test("the bearer scheme is case-insensitive; the token is not")
    func bearerScheme() {
        let token = Array("s3cret".utf8)
        #expect(Tokens.bearer("Bearer s3cret", matches: token))
        #expect(Tokens.bearer("bearer s3cret", matches: token))
        #expect(Tokens.bearer("BEARER   s3cret", matches: token))
        #expect(!Tokens.bearer("Bearer S3CRET", matches: token))
        #expect(!Tokens.bearer("Bearers3cret", matches: token))
        #expect(!Tokens.bearer("Basic s3cret", matches: token))
        #expect(!Tokens.bearer("", matches: token))
    }

    @Test(
        "a live server answers each hostile request with 400 and keeps serving; unknown names share one metric label; an oversized Expect: 100-continue gets 413 at once"
    )
    func liveServer() async throws {
        let parent = try TestSupport.makeTemporaryDirectory("hostile-serve")
        defer { TestSupport.remove(parent) }
        let iris = try irisCopy(in: parent, maxBatchSize: 1, maxDelayMilliseconds: 2)
        let server = try await RunningServer.start([iris])
        defer { Task { await server.stop() } }
        for body in Self.hostileBodies {
            let response = try await server.infer(body)
            #expect(response.status == 400, "\(body): \(response.text)")
        }
        for k in 0..<20 { _ = try await server.infer(#"{"inputs":[]}"#, model: "no-such-model-\(k)") }
        let ok = try await server.infer(#"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#)
        #expect(ok.status == 200)
        let metrics = try await server.request("GET", "/metrics").text
        #expect(!metrics.contains("no-such-model"))
        #expect(metrics.contains("model=\"_unknown\""))
        let big = try await server.request(
            "POST", "/v2/models/iris/infer",
            headers: ["Content-Type": "application/json", "Expect": "100-continue", "Content-Length": "1073741824"])
        #expect(big.status == 413)
        #expect(big.interim.isEmpty)
        #expect(try await server.request("GET", "/v2/health/live").status == 200)
    }

    @Test("an HTTP/1.0 request without keep-alive has its connection closed after the answer")
    func http10Closes() async throws {
        let parent = try TestSupport.makeTemporaryDirectory("http10")
        defer { TestSupport.remove(parent) }
        let server = try await RunningServer.start([try irisCopy(in: parent, maxBatchSize: 1, maxDelayMilliseconds: 2)])
        defer { Task { await server.stop() } }
        let port = server.port
        // Past 10 s the connection counts as left open (the server's idle timeout is 30 s).
        let received = await BlockingThreads.shared.run {
            Result { try FastLaneTests.exchange(port: port, Array("GET /v2 HTTP/1.0\r\nHost: localhost\r\n\r\n".utf8), seconds: 10) }
        }
        let text = String(decoding: try received.get(), as: UTF8.self)
        #expect(text.contains("200 OK") && text.contains("\"name\":\"vessel\""), "\(text)")
    }

    @Test("a connection that sends nothing past the idle timeout is closed; one kept busy by fast-lane requests is not")
    func idleTimeout() async throws {
        let parent = try TestSupport.makeTemporaryDirectory("idle")
        defer { TestSupport.remove(parent) }
        let server = try await RunningServer.start(
            [try irisCopy(in: parent, maxBatchSize: 1, maxDelayMilliseconds: 2)],
            inlineBudget: .seconds(10), idleTimeout: .seconds(2))
        defer { Task { await server.stop() } }
        let port = server.port
        // 30 requests 100 ms apart on one connection: three seconds of traffic, never two idle.
        let statuses = await BlockingThreads.shared.run { Result { try Self.keepAlive(port: port, requests: 30, pauseMicroseconds: 100_000) } }
        #expect(try statuses.get() == [Int](repeating: 200, count: 30))
        #expect(server.server.fastLaneAnswers.load(ordering: .relaxed) == 30)
        // A connection that never completes a header is closed (within 20 s, far past the 2 s).
        let idle = await BlockingThreads.shared.run {
            Result { try FastLaneTests.exchange(port: port, Array("POST /v2/models/iris/infer HTTP/1.1\r\nHost: x".utf8)) }
        }
        #expect(throws: Never.self) { try idle.get() }
    }

    /// Sends `requests` iris inferences on one keep-alive connection, pausing between them;
    /// their statuses. Throws if the server closes the connection.
    static func keepAlive(port: Int, requests: Int, pauseMicroseconds: UInt32) throws -> [Int] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var limit = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        guard
            withUnsafePointer(
                to: &address, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }) == 0
        else {
            throw TestFailure("cannot connect")
        }
        let body = #"{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#
        let request = Array(
            "POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        var statuses: [Int] = []
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        for k in 0..<requests {
            if k > 0 { usleep(pauseMicroseconds) }
            _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            // One response: the head, then Content-Length bytes.
            while true {
                let text = String(decoding: buffer, as: UTF8.self)
                if let headEnd = text.range(of: "\r\n\r\n"),
                    let length = text[..<headEnd.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") })
                        .flatMap({ Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) })
                {
                    let headBytes = text[..<headEnd.upperBound].utf8.count
                    if buffer.count >= headBytes + length {
                        statuses.append(Int(text.split(separator: " ")[1]) ?? 0)
                        buffer.removeFirst(headBytes + length)
                        break
                    }
                }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw TestFailure("the connection closed (or went silent) after \(statuses.count) answers") }
                buffer += chunk[..<n]
            }
        }
        return statuses
    }

    @Test("a small request to a Loop model runs off the event loop and stops at serving.timeout_ms; health answers meanwhile")
    func slowLoopRequest() async throws {
        // A deadline far past what health needs even on a loaded CI machine (3 s was not: with
        // every suite running at once, health once took longer), and the run still stops at it.
        let directory = try TestSupport.makeLoopModel(serving: "{timeout_ms: 15000, max_concurrency: 1}")
        defer { TestSupport.remove(directory) }
        let server = try await RunningServer.start([directory])
        defer { Task { await server.stop() } }
        guard case .ready(_, let queue, _) = server.server.models[0].current else {
            Issue.record("the loop model did not load")
            return
        }
        // Its example ran in microseconds, but its cost is data: never inline.
        #expect(queue.inlineElements == 0)
        let body = Array(TestSupport.endlessLoopRequest.utf8)
        let port = server.port
        let finished = Mutex(false)
        // Each request is sent and read on a thread of its own, and the ordering is recorded
        // there: a test task on a busy cooperative pool may resume late, but that thread sees
        // the answers in the order the server gave them.
        async let slow = BlockingThreads.shared.run {
            Result {
                let response = try LoopbackClient.request(
                    "POST", port: port, path: "/v2/models/loop/infer", headers: ["Content-Type": "application/json"], body: body)
                finished.withLock { $0 = true }
                return response
            }
        }.get()
        // Wait for the loop to hold its slot (not for a time), then ask for health.
        while queue.inFlight == 0 && !finished.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
        let (live, loopStillRunning) = try await BlockingThreads.shared.run {
            Result {
                let response = try LoopbackClient.request("GET", port: port, path: "/v2/health/live")
                return (response, !finished.withLock { $0 })
            }
        }.get()
        #expect(live.status == 200)
        // An ordering, not a time: health was answered while the loop still held its slot.
        #expect(loopStillRunning, "health waited for the loop to stop")
        let answer = try await slow
        #expect(answer.status == 504)
        // The run stopped, so the one slot is free again: a quick request gets its answer.
        let quick = #"{"inputs":[{"name":"m","shape":[],"datatype":"INT64","data":[2]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#
        let next = try await server.infer(quick, model: "loop")
        #expect(next.status == 200, "\(next.text)")
    }
}
