import Foundation
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Runs an unpacked image's entrypoint isolated in its root filesystem with a real runtime
/// found on this machine: bubblewrap (new user, PID, IPC and UTS namespaces; the host network,
/// so a loopback port reaches it), or, as root, `unshare` + `chroot` when bubblewrap is missing.
///
/// Environment, user, working directory, entrypoint and command come from the image config, as a
/// container runtime takes them; `overrides` replaces variables (the test's port).
public final class ContainerProcess: @unchecked Sendable {
    public enum Runtime: String, Sendable, CaseIterable {
        case bwrap, chroot
    }

    public let runtime: Runtime
    public let logPath: String
    private let process: Process

    public struct LaunchError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// The first runtime that can work here, or nil.
    public static func availableRuntime() -> Runtime? {
        if executable("bwrap") != nil { return .bwrap }
        if getuid() == 0, executable("chroot") != nil { return .chroot }
        return nil
    }

    static func executable(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") + ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
            let path = "\(directory)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    public init(root: String, config: ImageConfig.Settings, overrides: [String: String], runtime: Runtime, logPath: String) throws {
        self.runtime = runtime
        self.logPath = logPath
        let command = (config.entrypoint ?? []) + (config.cmd ?? [])
        guard !command.isEmpty else { throw LaunchError(description: "the image has no Entrypoint or Cmd") }
        var environment: [(String, String)] = []
        for item in config.env ?? [] {
            guard let equals = item.firstIndex(of: "=") else { continue }
            let key = String(item[..<equals])
            if overrides[key] == nil { environment.append((key, String(item[item.index(after: equals)...]))) }
        }
        environment += overrides.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let (uid, gid) = try Self.user(config.user, root: root)
        let workingDirectory = config.workingDir.flatMap { $0.isEmpty ? nil : $0 } ?? "/"

        let process = Process()
        switch runtime {
        case .bwrap:
            guard let bwrap = Self.executable("bwrap") else { throw LaunchError(description: "bwrap is not installed") }
            process.executableURL = URL(fileURLWithPath: bwrap)
            var arguments = [
                "--bind", root, "/", "--proc", "/proc", "--dev", "/dev",
                "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--uid", String(uid), "--gid", String(gid), "--die-with-parent", "--chdir", workingDirectory, "--clearenv"
            ]
            for (key, value) in environment { arguments += ["--setenv", key, value] }
            process.arguments = arguments + ["--"] + command
            process.environment = [:]
        case .chroot:
            // Root only: new PID and mount namespaces (unshare), /proc and /dev mounted in the
            // root as a runtime does (Swift reads its arguments from /proc/self/cmdline), then
            // chroot to the image's user.
            guard let unshare = Self.executable("unshare"), let chroot = Self.executable("chroot"), let mount = Self.executable("mount") else {
                throw LaunchError(description: "unshare, mount and chroot (util-linux, coreutils) are needed")
            }
            for directory in ["proc", "dev"] { try FileSystem.makeDirectories(root + "/" + directory) }
            func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
            let script =
                "\(quoted(mount)) -t proc proc \(quoted(root + "/proc")) && \(quoted(mount)) --rbind /dev \(quoted(root + "/dev")) && cd \(quoted(root + workingDirectory)) && exec \(quoted(chroot)) --userspec=\(uid):\(gid) \(quoted(root)) "
                + command.map(quoted).joined(separator: " ")
            process.executableURL = URL(fileURLWithPath: unshare)
            process.arguments = ["--pid", "--fork", "--mount", "--propagation", "private", "/bin/sh", "-c", script]
            process.environment = Dictionary(environment, uniquingKeysWith: { $1 })
        }

        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    public var isRunning: Bool { process.isRunning }
    public var terminationStatus: Int32 { process.terminationStatus }

    /// The last lines the container wrote, for error messages.
    public func logTail(lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    /// Waits up to `timeout` seconds for the process to end by itself (a health probe), then
    /// stops it as `stop` does. Returns the exit status, or nil if it had to be stopped.
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            stop(grace: 2)
            return nil
        }
        return process.terminationStatus
    }

    /// SIGTERM to the entrypoint (the runtime's descendants), then SIGKILL after `grace`.
    /// Returns the exit status, or nil if it had to be killed.
    @discardableResult
    public func stop(grace: Double = 10) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        let targets = Self.descendants(of: process.processIdentifier)
        for pid in targets.isEmpty ? [process.processIdentifier] : targets { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            for pid in Self.descendants(of: process.processIdentifier) + [process.processIdentifier] { kill(pid, SIGKILL) }
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    /// Every process below `pid`, read from /proc.
    static func descendants(of pid: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in FileSystem.listDirectory("/proc") {
            guard let child = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let parent = Int32(fields[1]) { children[parent, default: []].append(child) }
        }
        var result: [Int32] = []
        var queue = children[pid] ?? []
        while let next = queue.first {
            queue.removeFirst()
            result.append(next)
            queue += children[next] ?? []
        }
        return result
    }

    /// `uid[:gid]` or `name[:group]`, names looked up in the image's own /etc/passwd and /etc/group.
    static func user(_ text: String?, root: String) throws -> (UInt32, UInt32) {
        guard let text, !text.isEmpty else { return (0, 0) }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        func lookup(_ file: String, _ name: String, field: Int) throws -> UInt32 {
            if let number = UInt32(name) { return number }
            let content = (try? String(contentsOfFile: root + "/etc/" + file, encoding: .utf8)) ?? ""
            for line in content.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count > field, fields[0] == name, let id = UInt32(fields[field]) { return id }
            }
            throw LaunchError(description: "the image's user `\(name)` is not in its /etc/\(file)")
        }
        let uid = try lookup("passwd", parts[0], field: 2)
        var gid = uid
        if parts.count > 1 {
            gid = try lookup("group", parts[1], field: 2)
        } else if UInt32(parts[0]) == nil {
            let content = (try? String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)) ?? ""
            for line in content.split(separator: "\n") {
                let fields = line.split(separator: ":", omittingEmptySubsequences: false)
                if fields.count > 3, fields[0] == parts[0], let id = UInt32(fields[3]) { gid = id }
            }
        }
        return (uid, gid)
    }
}
