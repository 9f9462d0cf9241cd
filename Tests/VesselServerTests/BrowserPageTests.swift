import Foundation
import Testing
@testable import VesselServer
import VesselModelSources
import VesselTensor
import VesselTestSupport
import VesselSystem

/// The browser pages driven by headless Chromium (Debian's package): the model list, an example
/// run from the page, an image put in through the page's file path, text, a bearer token, a
/// phone-sized screenshot that is not blank, and `--no-ui`.
@Suite("browser pages", .serialized)
struct BrowserPageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    struct ChromiumMissing: Error, CustomStringConvertible {
        var description: String { "chromium is not installed (scripts/install-deps.sh installs it)" }
    }

    /// The page's DOM after its scripts ran (virtual time: no wall-clock waits).
    static func dom(_ url: String, extra: [String] = []) async throws -> String {
        guard let chromium else { throw ChromiumMissing() }
        let profile = try TestSupport.makeTemporaryDirectory("chromium-profile")
        defer { TestSupport.remove(profile) }
        let arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)", "--virtual-time-budget=8000"] + extra + [url]
        return try await BlockingThreads.shared.run {
            Result { try TestSupport.run(chromium, arguments + (extra.contains { $0.hasPrefix("--screenshot") } ? [] : ["--dump-dom"])).standardOutput }
        }.get()
    }

    static func answer(_ dom: String, output: String) -> String? {
        guard let start = dom.range(of: "data-testid=\"output-\(output)\"") else { return nil }
        let rest = dom[start.upperBound...]
        guard let answer = rest.range(of: "class=\"answer\">") else { return nil }
        return String(rest[answer.upperBound...].prefix { $0 != "<" })
    }

    @Test("the model list; an example run from the page; a PNG put in through the page's file path; text; each answer read from the DOM")
    func pages() async throws {
        let running = try await RunningServer.start([ImageRequestTests.digits, TextRequestTests.minilm])
        defer { Task { await running.stop() } }
        let base = "http://127.0.0.1:\(running.port)"
        let home = try await Self.dom(base + "/")
        #expect(home.contains("/ui/models/digits") && home.contains("/ui/models/minilm") && home.contains("badge ready"), "\(home.suffix(2000))")

        let example = try await Self.dom(base + "/ui/models/digits?example=digit-7")
        #expect(Self.answer(example, output: "digit") == "seven", "\(example.suffix(3000))")
        #expect(example.contains("HTTP 200") && example.contains("data-testid=\"snippet\"") && example.contains("curl -s"))

        // An image the page reads as a picked file would be (Blob → data URI → BYTES input).
        let png = try Data(contentsOf: URL(fileURLWithPath: ImageRequestTests.digits + "/examples/3.png")).base64EncodedString()
        let uploaded = try await Self.dom(
            base + "/ui/models/digits?load.image=" + "data:image/png;base64,\(png)".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
        #expect(Self.answer(uploaded, output: "digit") == "three", "\(uploaded.suffix(3000))")

        let text = try await Self.dom(base + "/ui/models/minilm?example=sentences")
        #expect(Self.answer(text, output: "embedding")?.contains("norm 1.0000") == true, "\(text.suffix(3000))")
        #expect(text.contains("tokenize") && text.contains("parameters.raw"), "the contract shows the steps and the model's own graph")

        // The contract lists each file with its SHA-256.
        let contract = try await running.request("GET", "/ui/api/models/minilm")
        let tokenizerDigest = try TestSupport.python(
            "import hashlib; print(hashlib.sha256(open('\(TextRequestTests.minilm)/tokenizer.json','rb').read()).hexdigest())"
        )
        .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(contract.text.contains(tokenizerDigest), "\(contract.text.prefix(600))")
        #expect(text.contains("sha256:" + tokenizerDigest.prefix(16)), "the page shows it")

        // The page's Python snippet for that request runs as it is, with the real tritonclient.
        let snippet = try #require(
            text.range(of: "data-testid=\"snippet\">").flatMap { start in
                text[start.upperBound...].range(of: "</pre>").map { String(text[start.upperBound..<$0.lowerBound]) }
            })
        let python =
            snippet.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&amp;", with: "&").components(separatedBy: "# Python").last?.split(separator: "\n", omittingEmptySubsequences: false)
            .dropFirst().joined(separator: "\n") ?? ""
        let ran = try TestSupport.python(python)
        #expect(ran.contains("'embedding': array("), "\(python)\n→ \(ran)")
    }

    @Test("with a bearer token: the page asks for it and shows nothing; with it (from the URL fragment) it answers; a phone-sized screenshot is not blank")
    func tokenAndPhone() async throws {
        let running = try await RunningServer.start([ImageRequestTests.digits], token: "s3cret")
        defer { Task { await running.stop() } }
        let base = "http://127.0.0.1:\(running.port)"
        let without = try await Self.dom(base + "/ui/models/digits?example=digit-7")
        #expect(without.contains("needs its bearer token") && Self.answer(without, output: "digit") == nil, "\(without.suffix(2000))")
        #expect(try await running.request("GET", "/ui/api/models").status == 401)
        let with = try await Self.dom(base + "/ui/models/digits?example=digit-3#token=s3cret")
        #expect(Self.answer(with, output: "digit") == "three", "\(with.suffix(3000))")

        let shot = try TestSupport.makeTemporaryDirectory("page-shot") + "/phone.png"
        _ = try await Self.dom(base + "/ui/models/digits?example=digit-7#token=s3cret", extra: ["--window-size=390,844", "--screenshot=\(shot)"])
        let spread = try TestSupport.python(
            """
            from PIL import Image, ImageStat
            im = Image.open("\(shot)").convert("L")
            print(im.size[0], im.size[1], round(ImageStat.Stat(im).stddev[0], 1))
            """
        ).split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(spread.count == 3 && spread[0] == 390 && spread[2] > 10, "screenshot \(shot): \(spread)")
    }

    @Test("--no-ui: the pages and their JSON are not served")
    func noUI() async throws {
        var configuration = ServerConfiguration(port: 0, logInferences: false, announce: false)
        configuration.ui = false
        let sources = try [ModelSource.directory(ImageRequestTests.digits)]
        let server = InferenceServer(sources: sources, names: try InferenceServer.servedNames(sources), configuration: configuration)
        let task = Task(executorPreference: ServerThreads.shared) { try await server.run() }
        let port = await server.boundPort()
        await server.modelsLoaded()
        defer { Task { await RunningServer(server: server, port: port, task: task).stop() } }
        for path in ["/", "/ui/models/digits", "/ui/api/models"] {
            let response = try await BlockingThreads.shared.run { Result { try LoopbackClient.request("GET", port: port, path: path) } }.get()
            #expect(response.status == 404, "\(path): \(response.status)")
        }
    }
}
