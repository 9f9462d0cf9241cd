import Foundation
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Registry credentials: `vessel login` writes `$VESSEL_HOME/auth.json`; Docker's
/// `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) is read too, so `docker login`
/// works as is. Both use Docker's format: `{"auths": {"HOST": {"auth": base64("user:password")}}}`.
/// Credential helpers (`credsStore`, `credHelpers`) are not run.
public struct Credentials: Sendable, Hashable {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    /// `Basic base64(user:password)`.
    public var basicAuthorization: String {
        "Basic " + Data("\(username):\(password)".utf8).base64EncodedString()
    }

    struct ConfigFile: Codable {
        struct Entry: Codable {
            var auth: String?
            var username: String?
            var password: String?
        }
        var auths: [String: Entry]?
    }

    /// The files searched, in order.
    public static func configFiles(vesselHome: String) -> [String] {
        let environment = ProcessInfo.processInfo.environment
        let docker = environment["DOCKER_CONFIG"].map { $0 + "/config.json" } ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.docker/config.json")
        return [vesselHome + "/auth.json", docker]
    }

    /// Credentials for `registry`, from the first file that has them.
    public static func find(registry: String, vesselHome: String) -> Credentials? {
        let keys =
            registry == "docker.io"
            ? ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"]
            : [registry, "https://\(registry)", "http://\(registry)"]
        for path in configFiles(vesselHome: vesselHome) {
            guard let data = FileManager.default.contents(atPath: path),
                let config = try? JSONDecoder().decode(ConfigFile.self, from: data), let auths = config.auths
            else { continue }
            for key in keys {
                guard let entry = auths[key] ?? auths[key + "/"] else { continue }
                if let username = entry.username, let password = entry.password { return Credentials(username: username, password: password) }
                if let auth = entry.auth, let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
                    let colon = decoded.firstIndex(of: ":")
                {
                    return Credentials(username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]))
                }
            }
        }
        return nil
    }

    /// Saves credentials for `registry` in `$VESSEL_HOME/auth.json` (mode 0600, written atomically).
    public static func save(_ credentials: Credentials?, registry: String, vesselHome: String) throws {
        let path = vesselHome + "/auth.json"
        var config = (FileManager.default.contents(atPath: path)).flatMap { try? JSONDecoder().decode(ConfigFile.self, from: $0) } ?? ConfigFile(auths: [:])
        var auths = config.auths ?? [:]
        if let credentials {
            auths[registry] = .init(auth: Data("\(credentials.username):\(credentials.password)".utf8).base64EncodedString())
        } else {
            auths.removeValue(forKey: registry)
        }
        config.auths = auths
        try FileSystem.makeDirectories(vesselHome)
        try FileSystem.writeAtomically(Array(CanonicalJSON.encode(config)), to: path, mode: 0o600)
    }
}
