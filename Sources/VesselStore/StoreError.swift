#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong in the store, each case holding the input it is about.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case notFound(String)
    case blobMissing(Digest, context: String)
    case digestMismatch(expected: Digest, actual: Digest, context: String)
    case sizeMismatch(Digest, expected: Int64, actual: Int64)
    case io(operation: String, path: String, errno: Int32)
    case corrupt(path: String, reason: String)
    case unsupportedLayout(path: String, version: String)
    case unsafeArchiveEntry(archive: String, entry: String, reason: String)
    case invalidArchive(archive: String, reason: String)
    case tooLarge(Digest, limit: Int64)
    /// A FIFO, socket, device or directory where a file's content was to be read.
    case notRegularFile(path: String, kind: String)

    public var description: String {
        switch self {
        case .notFound(let ref): "no artifact `\(ref)` in the store (see `vessel list`)"
        case .blobMissing(let digest, let context): "blob \(digest) (\(context)) is missing from the store"
        case .digestMismatch(let expected, let actual, let context):
            "blob \(expected) (\(context)) is corrupt: its content hashes to \(actual)"
        case .sizeMismatch(let digest, let expected, let actual):
            "blob \(digest) has \(actual) bytes, its descriptor says \(expected)"
        case .io(let operation, let path, let errno): "\(operation) \(path): \(String(cString: strerror(errno)))"
        case .corrupt(let path, let reason): "\(path) is damaged: \(reason)"
        case .unsupportedLayout(let path, let version):
            "\(path) is an OCI layout of version \(version), which this vessel does not understand"
        case .unsafeArchiveEntry(let archive, let entry, let reason): "refusing \(archive): entry `\(entry)` \(reason)"
        case .invalidArchive(let archive, let reason): "\(archive) is not a valid OCI archive: \(reason)"
        case .tooLarge(let digest, let limit): "blob \(digest) is larger than \(limit) bytes, too large to read as metadata"
        case .notRegularFile(let path, let kind): "\(path) is \(kind), not a regular file"
        }
    }
}
