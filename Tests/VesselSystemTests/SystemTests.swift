import Foundation
import Testing
import VesselSystem
import VesselTestSupport

@Suite("ResolvedPath and RegularFile")
struct SystemTests {
    @Test("a path is inside a directory only where the kernel resolves it, symlinks followed")
    func containment() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { TestSupport.remove(root) }
        let base = root + "/model", outside = root + "/secret"
        try FileManager.default.createDirectory(atPath: base + "/sub", withIntermediateDirectories: true)
        try TestSupport.write("w", to: base + "/sub/weights.bin")
        try TestSupport.write("s", to: outside)
        try FileManager.default.createSymbolicLink(atPath: base + "/escape", withDestinationPath: "../secret")
        try FileManager.default.createSymbolicLink(atPath: base + "/alias", withDestinationPath: "sub/weights.bin")

        #expect(ResolvedPath.isInside(base + "/sub/weights.bin", directory: base))
        #expect(ResolvedPath.isInside(base + "/sub/../sub/weights.bin", directory: base))
        #expect(ResolvedPath.isInside(base + "/alias", directory: base))
        #expect(!ResolvedPath.isInside(base + "/escape", directory: base), "a symlink out of the directory")
        #expect(!ResolvedPath.isInside(base + "/../secret", directory: base))
        #expect(!ResolvedPath.isInside(base + "/missing", directory: base), "a path that does not exist")
        #expect(!ResolvedPath.isInside(base, directory: base))
        #expect(ResolvedPath.isInside(base, directory: base, allowingItself: true))
        // A sibling whose name starts with the directory's is not inside it.
        try FileManager.default.createDirectory(atPath: base + "-other", withIntermediateDirectories: true)
        #expect(!ResolvedPath.isInside(base + "-other", directory: base))
        #expect(ResolvedPath.of(base + "/alias") == ResolvedPath.of(base + "/sub/weights.bin"))
        #expect(ResolvedPath.of(root + "/nothing") == nil)
    }

    @Test("only a regular file opens; a FIFO, a directory and a socket are named, and a FIFO does not block")
    func regularFilesOnly() throws {
        let root = try TestSupport.makeTemporaryDirectory()
        defer { TestSupport.remove(root) }
        try TestSupport.write("12345", to: root + "/file")
        let (fd, size) = try RegularFile.open(root + "/file")
        close(fd)
        #expect(size == 5)

        #expect(mkfifo(root + "/fifo", 0o600) == 0)
        #expect(problem(root + "/fifo") == "\(root)/fifo is a FIFO, not a regular file")
        #expect(problem(root) == "\(root) is a directory, not a regular file")
        #expect(problem(root + "/missing") == "cannot open \(root)/missing: No such file or directory")

        let socketPath = root + "/socket"
        let socketFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketFD) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (k, byte) in socketPath.utf8.enumerated() where k < raw.count - 1 { raw[k] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(problem(socketPath) == "\(socketPath) is a socket, not a regular file")
    }

    /// What opening `path` as a regular file reports; nil if it opened.
    func problem(_ path: String) -> String? {
        do {
            let (fd, _) = try RegularFile.open(path)
            close(fd)
            return nil
        } catch {
            return error.description
        }
    }
}
