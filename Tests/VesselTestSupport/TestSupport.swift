import Foundation

/// Helpers shared by the test targets: scratch directories, running outside tools, fixtures.
public enum TestSupport {
    /// The package root, found from this file's location.
    public static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static var exampleDirectory: String { packageRoot + "/Examples/iris" }

    /// The `vessel` binary built beside the test bundle.
    public static var vesselBinary: String {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // The test bundle may be a directory (`.xctest`) inside the build directory.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("vessel").path), directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("vessel").path
    }

    /// A fresh directory under the system temp directory, removed by the caller with `remove`.
    public static func makeTemporaryDirectory(_ label: String = "vessel-test") throws -> String {
        let path = NSTemporaryDirectory() + "\(label)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Copies the bundled example into `directory` (which must not exist) and returns it.
    @discardableResult
    public static func copyExample(to directory: String) throws -> String {
        try FileManager.default.copyItem(atPath: exampleDirectory, toPath: directory)
        return directory
    }

    public struct ProcessResult: Sendable {
        public var status: Int32
        public var standardOutput: String
        public var standardError: String
    }

    /// Runs a program to completion and captures its output.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], currentDirectory: String? = nil
    ) throws -> ProcessResult {
        let path = executable.hasPrefix("/") ? executable : try which(executable)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        // Output goes to files, not pipes: a chatty child can never block on a full pipe.
        let outPath = NSTemporaryDirectory() + "out-\(UUID().uuidString)", errPath = outPath + ".err"
        defer { remove(outPath); remove(errPath) }
        // posix_spawn and waitpid, not Foundation's Process: its waitUntilExit learns of the exit
        // from a Dispatch source, which needs a thread of the cooperative pool, and synchronous
        // tests (this call among them) can hold every one of those; two did, and the suite hung.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // env(1) changes directory for the child (Glibc's addchdir is not visible to Swift).
        let command = currentDirectory.map { ["/usr/bin/env", "-C", $0, path] } ?? [path]
        let argv: [UnsafeMutablePointer<CChar>?] = (command + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, envp)
        guard spawned == 0 else { throw SpawnFailed(executable: path, error: spawned) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        // An exit code, or 128 + the signal that ended it, as a shell reports it.
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + status & 0x7f
        let stdout = String(decoding: FileManager.default.contents(atPath: outPath) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: FileManager.default.contents(atPath: errPath) ?? Data(), as: UTF8.self)
        return ProcessResult(status: code, standardOutput: stdout, standardError: stderr)
    }

    public struct SpawnFailed: Error, CustomStringConvertible {
        public var executable: String
        public var error: Int32
        public var description: String { "cannot start \(executable): \(String(cString: strerror(error)))" }
    }

    /// Runs `vessel` with a store at `home`.
    @discardableResult
    public static func vessel(_ arguments: [String], home: String, currentDirectory: String? = nil) throws -> ProcessResult {
        try run(vesselBinary, arguments, environment: ["VESSEL_HOME": home], currentDirectory: currentDirectory)
    }

    public struct ToolMissing: Error, CustomStringConvertible {
        public var tool: String
        public var description: String { "`\(tool)` is not installed; scripts/install-deps.sh installs it" }
    }

    public static func which(_ tool: String) throws -> String {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ToolMissing(tool: tool)
    }

    /// SHA-256 of a file by an outside implementation (openssl), as `sha256:HEX`.
    public static func opensslDigest(_ path: String) throws -> String {
        let result = try run("openssl", ["dgst", "-sha256", "-r", path])
        return "sha256:" + (result.standardOutput.split(separator: " ").first.map(String.init) ?? "")
    }

    /// Flips one bit of one byte of a file in place.
    public static func flipByte(in path: String, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        guard let byte = try handle.read(upToCount: 1)?.first else { return }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data([byte ^ 0x01]))
    }

    public static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}

extension TestSupport {
    /// The test venv's Python (numpy, onnx), made by scripts/onnx-test-data.sh.
    public static var python: String { packageRoot + "/.build/venv/bin/python" }

    /// Runs a Python snippet in the test venv; fails with its stderr if it fails.
    @discardableResult
    public static func python(_ code: String) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: python) else { throw ToolMissing(tool: ".build/venv (scripts/onnx-test-data.sh)") }
        let result = try run(python, ["-c", code])
        guard result.status == 0 else { throw PythonFailed(message: result.standardError) }
        return result.standardOutput
    }

    /// A model directory slow enough to overlap requests (two 1024×1024 MatMuls around a Sin),
    /// with `serving` limits, for overload and shutdown tests.
    public static func makeSlowModel(maxConcurrency: Int, maxQueue: Int, timeoutMilliseconds: Int = 30_000) throws -> String {
        let directory = try makeTemporaryDirectory("slow-model")
        guard FileManager.default.isExecutableFile(atPath: python) else { throw ToolMissing(tool: ".build/venv (scripts/onnx-test-data.sh)") }
        let written = try run(
            python,
            [
                packageRoot + "/scripts/matmul_model.py", directory, "slow", "1024", "0.001", "Sin",
                "{max_concurrency: \(maxConcurrency), max_queue: \(maxQueue), timeout_ms: \(timeoutMilliseconds)}"
            ])
        guard written.status == 0 else { throw PythonFailed(message: written.standardError) }
        return directory
    }

    /// Python (numpy, onnx and `helper`, `numpy_helper`, `T` = TensorProto imported) that saves
    /// a model whose cost is data: a Loop adding 1 to `x` ([1] float) `m` (int64 scalar) times,
    /// giving `y`; `trips` is the graph input feeding M (an empty shape list for a scalar).
    public static func loopModelScript(saveTo path: String, tripShape: String = "[]") -> String {
        """
        body = helper.make_graph([helper.make_node('Identity', ['c_in'], ['c_out']), helper.make_node('Add', ['v_in', 'one'], ['v_out'])], 'body',
                                 [helper.make_tensor_value_info('i', T.INT64, []), helper.make_tensor_value_info('c_in', T.BOOL, []),
                                  helper.make_tensor_value_info('v_in', T.FLOAT, [1])],
                                 [helper.make_tensor_value_info('c_out', T.BOOL, []), helper.make_tensor_value_info('v_out', T.FLOAT, [1])],
                                 [numpy_helper.from_array(np.ones(1, np.float32), 'one')])
        g = helper.make_graph([helper.make_node('Loop', ['m', '', 'x'], ['y'], body=body)], 'loop',
                              [helper.make_tensor_value_info('m', T.INT64, \(tripShape)), helper.make_tensor_value_info('x', T.FLOAT, [1])],
                              [helper.make_tensor_value_info('y', T.FLOAT, [1])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 18)])
        m.ir_version = 8
        onnx.save(m, '\(path)')
        """
    }

    /// A model directory named `loop` whose cost is data (``loopModelScript``: `y = x + m`),
    /// with `serving` settings (a YAML flow mapping) and an example of three trips.
    public static func makeLoopModel(serving: String) throws -> String {
        let directory = try makeTemporaryDirectory("loop-model")
        try python(
            """
            import numpy as np, onnx
            from onnx import helper, numpy_helper, TensorProto as T
            \(loopModelScript(saveTo: directory + "/model.onnx"))
            """)
        try write(
            """
            name: loop
            version: "1"
            model: {format: onnx, file: model.onnx}
            signature:
              inputs: [{name: m, dtype: int64, shape: []}, {name: x, dtype: float32, shape: [1]}]
              outputs: [{name: y, dtype: float32, shape: [1]}]
            serving: \(serving)
            examples:
              - {name: three, inputs: {m: 3, x: [0]}, outputs: {y: [3]}}

            """, to: directory + "/vessel.yaml")
        return directory
    }

    /// A request that runs the loop model until its deadline stops it.
    public static let endlessLoopRequest =
        #"{"inputs":[{"name":"m","shape":[],"datatype":"INT64","data":[4611686018427387904]},{"name":"x","shape":[1],"datatype":"FP32","data":[0]}]}"#

    /// A binary OIP request for the slow model: `rows` rows of ones.
    public static func slowModelRequest(rows: Int) -> (headers: [String: String], body: [UInt8]) {
        let header = Array(
            #"{"inputs":[{"name":"X","shape":[\#(rows),1024],"datatype":"FP32","parameters":{"binary_data_size":\#(rows * 4096)}}],"outputs":[{"name":"Y","parameters":{"binary_data":true}}]}"#
                .utf8)
        let data = [Float](repeating: 1, count: rows * 1024).withUnsafeBytes { Array($0) }
        return (["Inference-Header-Content-Length": String(header.count), "Content-Type": "application/octet-stream"], header + data)
    }

    public struct PythonFailed: Error, CustomStringConvertible {
        public var message: String
        public var description: String { "python failed: \(message)" }
    }
}

extension TestSupport {
    /// Polls `condition` every `interval` seconds until it holds (true) or `timeout` passes
    /// (false): the one wait for another process to reach a state (a server to listen, a
    /// container to turn healthy). In-process servers are awaited instead (`boundPort()`,
    /// `modelsLoaded()`). `gaveUp` stops early, for a process that has exited.
    @discardableResult
    public static func waitUntil(timeout: Double, interval: Double = 0.01, gaveUp: () -> Bool = { false }, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if try condition() { return true }
            if gaveUp() || Date() >= deadline { return false }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    /// The sum of a Prometheus gauge or counter's samples in a `/metrics` text.
    public static func metric(_ name: String, in text: String) -> Double {
        text.split(separator: "\n").reduce(0) { sum, line in
            guard line.hasPrefix(name + "{") || line.hasPrefix(name + " "), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else {
                return sum
            }
            return sum + value
        }
    }
}
