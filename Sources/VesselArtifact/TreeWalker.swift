import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Lists a directory tree for a tar layer in a fixed order (byte-wise sorted paths), refusing
/// what cannot be reproduced or would escape on extraction: devices, sockets, and symlinks that
/// point outside the model directory.
enum TreeWalker {
    struct Entry {
        var archivePath: String
        var fullPath: String
        var kind: TarWriter.EntryKind
        var size: Int64
    }

    static func entries(root: String, prefix: String) throws -> [Entry] {
        var result: [Entry] = [Entry(archivePath: prefix, fullPath: root, kind: .directory, size: 0)]
        try walk(directory: root, archivePrefix: prefix, into: &result)
        return result
    }

    private static func walk(directory: String, archivePrefix: String, into result: inout [Entry]) throws {
        // Sorting by UTF-8 bytes, not by locale, keeps the order the same on every machine.
        let names = FileSystem.listDirectory(directory).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in names {
            let full = directory + "/" + name
            let archivePath = archivePrefix + "/" + name
            var info = stat()
            guard lstat(full, &info) == 0 else { throw StoreError.io(operation: "cannot stat", path: full, errno: errno) }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                result.append(Entry(archivePath: archivePath, fullPath: full, kind: .directory, size: 0))
                try walk(directory: full, archivePrefix: archivePath, into: &result)
            case S_IFREG:
                let size = Int64(info.st_size)
                result.append(Entry(archivePath: archivePath, fullPath: full, kind: .file(size: size, executable: info.st_mode & 0o111 != 0), size: size))
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: 4097)
                let length = readlink(full, &buffer, 4096)
                guard length >= 0 else { throw StoreError.io(operation: "cannot read link", path: full, errno: errno) }
                let target = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard SafePath.symlinkStaysInside(linkPath: archivePath, target: target) else {
                    throw Packer.PackError.unsupportedFile(path: full, reason: "symlink to `\(target)` leads outside the model directory")
                }
                result.append(Entry(archivePath: archivePath, fullPath: full, kind: .symlink(target: target), size: 0))
            default:
                throw Packer.PackError.unsupportedFile(path: full, reason: "not a regular file, directory or symlink")
            }
        }
    }
}
