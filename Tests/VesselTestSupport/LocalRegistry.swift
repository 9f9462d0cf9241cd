import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `docker-registry` (Debian's distribution 2.8) on a free loopback port, with its own
/// storage directory, optionally behind htpasswd basic auth. Stopped when released.
public final class LocalRegistry: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private let process = Process()

    public var host: String { "127.0.0.1:\(port)" }

    public init(username: String? = nil, password: String? = nil) throws {
        let binary = try TestSupport.which("docker-registry")
        directory = try TestSupport.makeTemporaryDirectory("registry")
        var auth = ""
        if let username, let password {
            let hashed = try TestSupport.run("htpasswd", ["-Bbn", username, password])
            guard hashed.status == 0 else { throw TestSupport.ToolMissing(tool: "htpasswd") }
            try TestSupport.write(hashed.standardOutput, to: directory + "/htpasswd")
            auth = "auth:\n  htpasswd:\n    realm: vessel-test\n    path: \(directory)/htpasswd\n"
        }
        // Bind, read the port, release it: the registry takes it a moment later.
        port = try Self.freePort()
        let config = """
        version: 0.1
        log:
          level: error
          accesslog:
            disabled: true
        storage:
          filesystem:
            rootdirectory: \(directory)/data
          delete:
            enabled: true
        http:
          addr: 127.0.0.1:\(port)
        \(auth)
        """
        try TestSupport.write(config, to: directory + "/config.yml")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve", directory + "/config.yml"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        for _ in 0..<500 {
            if let status = try? Self.status(port: port, path: "/v2/"), status == 200 || status == 401 { return }
            usleep(10_000)
        }
        process.terminate()
        throw TestSupport.ToolMissing(tool: "a docker-registry answering on port \(port)")
    }

    deinit {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        TestSupport.remove(directory)
    }

    /// Bytes the registry stores under its blobs, for checking what was uploaded.
    public var storedBlobDigests: Set<String> {
        let root = directory + "/data/docker/registry/v2/blobs/sha256"
        var result = Set<String>()
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            for hex in (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + prefix)) ?? [] { result.insert("sha256:" + hex) }
        }
        return result
    }

    static func status(port: Int, path: String) throws -> Int {
        let result = try TestSupport.run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(port)\(path)"])
        return Int(result.standardOutput) ?? 0
    }

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw TestSupport.ToolMissing(tool: "a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
