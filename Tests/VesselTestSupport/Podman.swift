import Foundation

/// Podman with its own storage, running containers with runc (crun fails on this kind of
/// machine) and the ulimits runc may set here, its pods' infra containers included. Its locks
/// and state are its own too (file locks under its runroot): two instances sharing the default
/// shared-memory locks and /run/libpod take each other's locks.
public struct Podman {
    public let path: String
    public let home: String
    public let base: [String]
    public let environment: [String: String]

    public init(home: String) throws {
        path = try TestSupport.which("podman")
        self.home = home
        // Podman refuses a runroot path over 50 characters.
        let runroot = "/tmp/vp-\(UInt32.random(in: 0...UInt32.max))"
        base = ["--root", home + "/podman-root", "--runroot", runroot]
        try TestSupport.write(
            """
            [containers]
            default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
            [engine]
            runtime = "runc"
            events_logger = "file"
            cgroup_manager = "cgroupfs"
            lock_type = "file"
            tmp_dir = "\(runroot)/libpod"

            """, to: home + "/containers.conf")
        environment = ["CONTAINERS_CONF": home + "/containers.conf"]
    }

    @discardableResult
    public func callAsFunction(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run(path, base + arguments, environment: environment)
    }

    /// `podman run -d ARGUMENTS`, through Python's subprocess, which closes inherited descriptors
    /// (the container's monitor outlives podman); podman's output goes to `podman-run.log`.
    public func start(_ arguments: [String]) throws -> TestSupport.ProcessResult {
        try TestSupport.run("python3", launcher(arguments), environment: environment)
    }

    /// python3's arguments that start `podman run -d ARGUMENTS` so.
    func launcher(_ arguments: [String]) -> [String] {
        let script =
            "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=open('\(home)/podman-run.log', 'a'), stderr=subprocess.STDOUT, close_fds=True))"
        return ["-c", script, path] + base + ["run", "-d"] + arguments
    }

    /// What `start` runs have printed.
    public var log: String { (try? String(contentsOfFile: home + "/podman-run.log", encoding: .utf8)) ?? "" }

    public func tearDown() {
        _ = try? callAsFunction(["pod", "rm", "-f", "-a"])
        _ = try? callAsFunction(["rm", "-f", "-a"])
        _ = try? callAsFunction(["system", "reset", "--force"])
        _ = try? TestSupport.run("umount", ["-l", home + "/podman-root/overlay"])
        TestSupport.remove(base[3])
    }
}
