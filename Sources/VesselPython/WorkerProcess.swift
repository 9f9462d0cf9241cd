#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
import VesselTensor

/// One Python worker: a child process running ``WorkerScript`` with a request pipe on its fd 3
/// and an answer pipe on its fd 4. Used by one caller at a time (the pool hands it out).
final class WorkerProcess: @unchecked Sendable {
    let pid: pid_t
    private let requests: Int32
    private let answers: Int32
    private(set) var isAlive = true

    /// Starts a worker; does not wait for it to load (see ``awaitLoaded(within:)``).
    init(interpreter: String, configuration: String, environment: [String: String]) throws(WorkerError) {
        // Pipes are made close-on-exec and the child spawned under one lock: a worker started
        // at the same moment must not inherit this one's pipe ends, or it would hold them open
        // and this worker's death would never show as end-of-file.
        let (child, requests, answers) = try Self.spawnLock.withLock { _ throws(WorkerError) -> (pid_t, Int32, Int32) in
            try Self.spawn(interpreter: interpreter, configuration: configuration, environment: environment)
        }
        pid = child
        self.requests = requests
        self.answers = answers
        for descriptor in [requests, answers] {
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        }
    }

    static let spawnLock = Mutex(())

    private static func spawn(interpreter: String, configuration: String, environment: [String: String]) throws(WorkerError) -> (pid_t, Int32, Int32) {
        var toWorker: [Int32] = [-1, -1]
        var fromWorker: [Int32] = [-1, -1]
        guard pipe(&toWorker) == 0 else { throw .unavailable("cannot create a pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&fromWorker) == 0 else {
            close(toWorker[0]); close(toWorker[1])
            throw .unavailable("cannot create a pipe: \(String(cString: strerror(errno)))")
        }
        for descriptor in toWorker + fromWorker { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies (also when a pipe end already is fd 3 or 4).
        posix_spawn_file_actions_adddup2(&actions, toWorker[0], 3)
        posix_spawn_file_actions_adddup2(&actions, fromWorker[1], 4)
        let (status, child) = startProcess([interpreter, "-c", WorkerScript.source, "3", "4", configuration], environment: environment, actions: &actions)
        close(toWorker[0])
        close(fromWorker[1])
        guard status == 0 else {
            close(toWorker[1]); close(fromWorker[0])
            throw .unavailable("cannot start \(interpreter): \(String(cString: strerror(status)))")
        }
        return (child, toWorker[1], fromWorker[0])
    }

    deinit { kill() }

    /// Waits for the worker's first frame: loaded, or the error its loading raised.
    func awaitLoaded(within timeout: Duration) throws(WorkerError) {
        let deadline = ContinuousClock.now + timeout
        let frame = try receive { ContinuousClock.now > deadline ? "did not finish loading within \(timeout)" : nil }
        let answer = try frame.answer()
        if !answer.ok {
            kill()
            // Where it raised (the traceback's innermost frame): the server has no other place
            // to show it, and a loading error is the operator's to fix.
            let traceback = answer.traceback ?? ""
            let place = traceback.split(separator: "\n").map(\.trimmed).last { $0.hasPrefix("File \"") }
            let message = (answer.error ?? "an unknown error") + (place.map { " (\($0))" } ?? "")
            throw .raised(message: message, traceback: traceback)
        }
    }

    /// Sends one frame and waits for the answer; `stop` is asked between waits and, once it
    /// gives a reason, the worker is killed (it may be stuck in the model's code).
    func exchange(_ frame: WorkerFrame, stop: () -> String?) throws(WorkerError) -> WorkerFrame {
        try send(frame.bytes, stop: stop)
        return try receive(stop: stop)
    }

    private func send(_ bytes: [UInt8], stop: () -> String?) throws(WorkerError) {
        var sent = 0
        while sent < bytes.count {
            let written = bytes.withUnsafeBytes { write(requests, $0.baseAddress! + sent, bytes.count - sent) }
            if written > 0 {
                sent += written
                continue
            }
            if written < 0, errno == EINTR { continue }
            if written < 0, errno == EAGAIN {
                try wait(for: requests, events: Int16(POLLOUT), stop: stop)
                continue
            }
            throw died()
        }
    }

    private func receive(stop: () -> String?) throws(WorkerError) -> WorkerFrame {
        let lengths = try read(12, stop: stop)
        let headerLength = lengths[0..<4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let payloadLength = lengths[4..<12].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << UInt64(8 * $1.offset) }
        // A header is a few hundred bytes; a payload is bounded like any tensor.
        guard headerLength <= 16 << 20, payloadLength <= UInt64(Tensor.maximumBytes) else {
            kill()
            throw .protocolViolation("it announced a frame of \(headerLength) + \(payloadLength) bytes")
        }
        let header = try read(headerLength, stop: stop)
        let payload = try read(Int(payloadLength), stop: stop)
        return WorkerFrame(header: header, payload: payload)
    }

    private func read(_ count: Int, stop: () -> String?) throws(WorkerError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(answers, $0.baseAddress! + done, count - done) }
            if got > 0 {
                done += got
                continue
            }
            if got < 0, errno == EINTR { continue }
            if got < 0, errno == EAGAIN {
                try wait(for: answers, events: Int16(POLLIN), stop: stop)
                continue
            }
            throw died()
        }
        return buffer
    }

    /// Polls in short slices so `stop` is asked at least every 20 ms.
    private func wait(for descriptor: Int32, events: Int16, stop: () -> String?) throws(WorkerError) {
        while true {
            if let reason = stop() {
                kill()
                throw .stopped(reason)
            }
            var entry = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, 20)
            if ready > 0 { return }
            if ready < 0, errno != EINTR { throw died() }
        }
    }

    /// The error for a worker whose pipe broke: how it ended, once it has.
    private func died() -> WorkerError {
        let status = reap()
        return .died(status)
    }

    /// Resident memory from `/proc/PID/statm`, or nil once the worker is gone.
    func residentBytes() -> Int? {
        guard isAlive else { return nil }
        let descriptor = open("/proc/\(pid)/statm", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
        guard count > 0 else { return nil }
        let fields = buffer[0..<count].split(separator: UInt8(ascii: " "))
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Kills the worker (if still running) and collects its exit status.
    func kill() {
        guard isAlive else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = reap()
    }

    private func reap() -> String {
        guard isAlive else { return "had already stopped" }
        isAlive = false
        close(requests)
        close(answers)
        var status: Int32 = 0
        // The pipe closes as the process exits: at worst a moment's wait; SIGKILL it otherwise.
        var result = waitpid(pid, &status, WNOHANG)
        if result == 0 {
            usleep(100_000)
            result = waitpid(pid, &status, WNOHANG)
            if result == 0 {
                _ = Glibc.kill(pid, SIGKILL)
                result = waitpid(pid, &status, 0)
            }
        }
        guard result == pid else { return "stopped" }
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        let name = [SIGSEGV: "SIGSEGV", SIGKILL: "SIGKILL", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGTERM: "SIGTERM", SIGFPE: "SIGFPE", SIGILL: "SIGILL"][
            signal]
        return "was killed by signal \(signal)\(name.map { " (\($0))" } ?? "")"
    }
}

/// posix_spawn with `environment` exactly, every signal at its default and none blocked (the
/// server ignores SIGPIPE; its children must not). Returns posix_spawn's status and the pid.
func startProcess(_ arguments: [String], environment: [String: String], actions: inout posix_spawn_file_actions_t) -> (Int32, pid_t) {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let lines = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = lines.map { strdup($0) } + [nil]
    defer {
        for pointer in argv { free(pointer) }
        for pointer in envp { free(pointer) }
    }
    var child: pid_t = 0
    let status = posix_spawn(&child, arguments[0], &actions, &attributes, &argv, &envp)
    return (status, child)
}
