import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `docker-registry` (Debian's distribution 2.8) on a free loopback port, with its own
/// storage directory, optionally behind htpasswd basic auth. Stopped when released.
public final class LocalRegistry: @unchecked Sendable {
    public let port: Int
    public let directory: String
    private var process = Process()

    public var host: String { "127.0.0.1:\(port)" }

    /// How the registry authenticates: not at all, htpasswd (HTTP Basic), or the token flow — a
    /// token server (Python's standard library, signing ES256 JWTs with openssl) that takes the
    /// user and password as Basic auth and answers the registry's Bearer challenges.
    public enum Auth {
        case none, basic, token
    }

    private var tokenServer: Process?

    public init(username: String? = nil, password: String? = nil, auth mode: Auth? = nil) throws {
        let binary = try TestSupport.which("docker-registry")
        directory = try TestSupport.makeTemporaryDirectory("registry")
        var auth = ""
        let mode = mode ?? (username == nil ? .none : .basic)
        if mode == .token, let username, let password {
            let tokenPort = try Self.freePort()
            let made = try TestSupport.run(
                "openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-days", "2",
                    "-subj", "/CN=vessel-token"
                ])
            guard made.status == 0 else { throw TestSupport.ToolMissing(tool: "openssl (\(made.standardError))") }
            try TestSupport.write(Self.tokenServerScript, to: directory + "/token-server.py")
            let server = Process()
            server.executableURL = URL(fileURLWithPath: try TestSupport.which("python3"))
            server.arguments = [directory + "/token-server.py", directory + "/key.pem", directory + "/cert.pem", String(tokenPort), username, password]
            server.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            server.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try server.run()
            tokenServer = server
            auth =
                "auth:\n  token:\n    realm: http://127.0.0.1:\(tokenPort)/token\n    service: vessel-test\n    issuer: vessel-test-issuer\n    rootcertbundle: \(directory)/cert.pem\n"
        } else if let username, let password {
            let hashed = try TestSupport.run("htpasswd", ["-Bbn", username, password])
            guard hashed.status == 0 else { throw TestSupport.ToolMissing(tool: "htpasswd") }
            try TestSupport.write(hashed.standardOutput, to: directory + "/htpasswd")
            auth = "auth:\n  htpasswd:\n    realm: vessel-test\n    path: \(directory)/htpasswd\n"
        }
        // Bind, read the port, release it: the registry takes it a moment later. Another process
        // can take the port in between, and on a loaded machine the registry can take seconds to
        // answer: up to three ports, fifteen seconds each.
        var started: Int?
        for _ in 0..<3 where started == nil {
            let candidate = try Self.freePort()
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
                  addr: 127.0.0.1:\(candidate)
                \(auth)
                """
            try TestSupport.write(config, to: directory + "/config.yml")
            let attempt = Process()
            attempt.executableURL = URL(fileURLWithPath: binary)
            attempt.arguments = ["serve", directory + "/config.yml"]
            attempt.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            attempt.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try attempt.run()
            let answering = TestSupport.waitUntil(timeout: 15, gaveUp: { !attempt.isRunning }) {
                guard let status = try? Self.status(port: candidate, path: "/v2/") else { return false }
                return status == 200 || status == 401
            }
            if answering {
                process = attempt
                started = candidate
            } else if attempt.isRunning {
                attempt.terminate()
                attempt.waitUntilExit()
            }
        }
        guard let started else {
            tokenServer?.terminate()
            throw TestSupport.ToolMissing(tool: "a docker-registry answering on a loopback port (three tries)")
        }
        port = started
    }

    deinit {
        if let tokenServer, tokenServer.isRunning {
            kill(tokenServer.processIdentifier, SIGKILL)
            tokenServer.waitUntilExit()
        }
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

    static let tokenServerScript = #"""
        import base64, json, subprocess, sys, time, http.server, urllib.parse

        key, cert, port, user, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout

        def b64(data):
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        def raw_signature(der_sig):
            # ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r||s, 32 bytes each
            assert der_sig[0] == 0x30
            i = 2 if der_sig[1] < 0x80 else 2 + (der_sig[1] & 0x7f)
            out = b""
            for _ in range(2):
                assert der_sig[i] == 0x02
                n = der_sig[i + 1]
                value = der_sig[i + 2:i + 2 + n].lstrip(b"\0")
                out += value.rjust(32, b"\0")
                i += 2 + n
            return out

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for scope in query.get("scope", []):
                    kind, name, actions = scope.split(":")
                    access.append({"type": kind, "name": name, "actions": actions.split(",")})
                now = int(time.time())
                header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
                claims = {"iss": "vessel-test-issuer", "sub": user, "aud": query.get("service", [""])[0], "exp": now + 300,
                          "nbf": now - 10, "iat": now, "jti": str(now) + str(id(self)), "access": access}
                signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
                signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input, capture_output=True, check=True).stdout
                token = signing_input.decode() + "." + b64(raw_signature(signature))
                body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
        """#

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
