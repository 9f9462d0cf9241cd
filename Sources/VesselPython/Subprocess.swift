#if canImport(Glibc)
import Glibc
#endif
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// Runs a program to completion with its stdout and stderr collected (for pip and venv, whose
/// last lines explain a failure). Stdin is /dev/null.
enum Subprocess {
    struct Result {
        var status: Int32
        var output: String

        /// The last lines of the output, for an error message.
        var tail: String {
            output.split(separator: "\n").suffix(12).joined(separator: "\n")
        }
    }

    static func run(_ arguments: [String], environment: [String: String]) throws(WorkerError) -> Result {
        // Under the workers' spawn lock, close-on-exec: no worker started meanwhile inherits the
        // write end (which would keep this read from ever seeing end-of-file).
        let (child, outputPipe) = try WorkerProcess.spawnLock.withLock { _ throws(WorkerError) -> (pid_t, [Int32]) in
            try spawn(arguments, environment: environment)
        }
        defer { close(outputPipe[0]) }
        return collect(outputPipe[0], child: child)
    }

    private static func spawn(_ arguments: [String], environment: [String: String]) throws(WorkerError) -> (pid_t, [Int32]) {
        var outputPipe: [Int32] = [-1, -1]
        guard pipe(&outputPipe) == 0 else { throw .unavailable("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for descriptor in outputPipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, outputPipe[1], 2)
        let (status, child) = startProcess(arguments, environment: environment, actions: &actions)
        close(outputPipe[1])
        guard status == 0 else {
            close(outputPipe[0])
            throw .unavailable("cannot start \(arguments[0]): \(String(cString: strerror(status)))")
        }
        return (child, outputPipe)
    }

    private static func collect(_ descriptor: Int32, child: pid_t) -> Result {
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count > 0 {
                // Keep the end: a failure explains itself last.
                output += buffer[0..<count]
                if output.count > 1 << 20 { output.removeFirst(output.count - (1 << 20)) }
            } else if count < 0, errno == EINTR {
                continue
            } else {
                break
            }
        }
        var exit: Int32 = 0
        while waitpid(child, &exit, 0) < 0, errno == EINTR {}
        let code = (exit & 0x7f) == 0 ? (exit >> 8) & 0xff : 128 + (exit & 0x7f)
        return Result(status: code, output: String(decoding: output, as: UTF8.self))
    }
}
