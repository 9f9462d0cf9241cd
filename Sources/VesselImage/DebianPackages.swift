import Foundation

/// Which Debian package installed a file, read from dpkg's own database (`/var/lib/dpkg/status`
/// and `info/*.list`), for an image's SBOM. Empty where there is no dpkg database.
public struct DebianPackages: Sendable {
    public struct Package: Sendable, Hashable {
        public var name: String
        public var version: String
        public var architecture: String

        /// The package URL, as the purl spec spells Debian packages.
        public var purl: String { "pkg:deb/debian/\(name)@\(version)?arch=\(architecture)" }
    }

    private var owners: [String: Package] = [:]

    /// Reads the database under `root` (`/var/lib/dpkg`).
    public init(root: String = "/var/lib/dpkg") {
        guard let status = try? String(contentsOfFile: root + "/status", encoding: .utf8) else { return }
        var installed: [String: Package] = [:]
        for stanza in status.components(separatedBy: "\n\n") {
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix(" ") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            guard let name = fields["Package"], let version = fields["Version"], let architecture = fields["Architecture"],
                fields["Status"]?.hasSuffix(" installed") == true
            else { continue }
            let package = Package(name: name, version: version, architecture: architecture)
            installed[name] = package
            installed["\(name):\(architecture)"] = package
        }
        let info = root + "/info"
        for file in (try? FileManager.default.contentsOfDirectory(atPath: info)) ?? [] where file.hasSuffix(".list") {
            guard let package = installed[String(file.dropLast(5))], let list = try? String(contentsOfFile: info + "/" + file, encoding: .utf8) else {
                continue
            }
            for path in list.split(separator: "\n") { owners[String(path)] = package }
        }
    }

    /// The package that installed `path`, tried as given and across Debian's merged `/usr`
    /// (`/lib/…` and `/usr/lib/…` are one file, listed under either).
    public func owner(of path: String) -> Package? {
        var candidates = [path]
        for top in ["/lib", "/lib64", "/bin", "/sbin"] {
            if path.hasPrefix("/usr" + top + "/") { candidates.append(String(path.dropFirst(4))) }
            if path.hasPrefix(top + "/") { candidates.append("/usr" + path) }
        }
        return candidates.lazy.compactMap { owners[$0] }.first
    }
}
