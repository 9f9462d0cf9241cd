#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A streaming tar reader over a file descriptor: ustar, PAX (`x`, `g`) and GNU long names
/// (`L`, `K`), base-256 sizes. Content is handed out in chunks, never held whole.
public final class TarReader {
    public enum Kind: Sendable, Equatable {
        case file, directory, symlink(String), hardlink(String), other(UInt8)
    }

    public struct Entry: Sendable {
        public var path: String
        public var kind: Kind
        public var size: Int64
        public var mode: Int
    }

    private let fd: Int32
    private let path: String
    private var remaining: Int64 = 0
    private var padding = 0

    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// The next entry's header, skipping whatever of the previous entry's content was not read;
    /// nil at the end of the archive.
    public func next() throws -> Entry? {
        try skipRest()
        var paxPath: String?, paxLink: String?, paxSize: Int64?
        var longName: String?, longLink: String?
        while true {
            let block = try readBlock()
            guard let block, block.contains(where: { $0 != 0 }) else { return nil }
            try checkChecksum(block)
            let typeflag = block[156]
            let size = try Self.number(block[124..<136], archive: path)
            switch typeflag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try readSmallContent(size)
                if typeflag == UInt8(ascii: "x") {
                    for (key, value) in try Self.paxRecords(records, archive: path) {
                        switch key {
                        case "path": paxPath = value
                        case "linkpath": paxLink = value
                        case "size": paxSize = Int64(value)
                        default: break
                        }
                    }
                }
                continue
            case UInt8(ascii: "L"):
                longName = Self.cString(try readSmallContent(size)[...])
                continue
            case UInt8(ascii: "K"):
                longLink = Self.cString(try readSmallContent(size)[...])
                continue
            default:
                break
            }
            var name = Self.cString(block[0..<100])
            let magic = Array(block[257..<263])
            if magic.starts(with: Array("ustar".utf8)) {
                let prefix = Self.cString(block[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            name = paxPath ?? longName ?? name
            let link = paxLink ?? longLink ?? Self.cString(block[157..<257])
            let entrySize = paxSize ?? size
            let mode = Int((try? Self.number(block[100..<108], archive: path)) ?? 0)
            let kind: Kind
            switch typeflag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "2"): kind = .symlink(link)
            case UInt8(ascii: "1"): kind = .hardlink(link)
            default: kind = .other(typeflag)
            }
            let hasContent = kind == .file || { if case .other = kind { return true } else { return false } }()
            remaining = hasContent ? entrySize : 0
            padding = hasContent ? TarWriter.padding(entrySize) : 0
            return Entry(path: name, kind: kind, size: hasContent ? entrySize : 0, mode: mode)
        }
    }

    /// Hands the current entry's content to `body` in chunks.
    public func readContent(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while remaining > 0 {
            let want = Int(min(Int64(buffer.count), remaining))
            let count = try FileSystem.readFull(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[..<want]), path: path)
            if count < want { throw StoreError.invalidArchive(archive: path, reason: "truncated in the middle of an entry") }
            remaining -= Int64(count)
            try body(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
    }

    /// Where the current entry's content starts in the file, right after ``next()`` returned it.
    public var contentOffset: Int64 { Int64(lseek(fd, 0, SEEK_CUR)) }

    /// Skips the rest of the current entry by seeking, not reading (the descriptor must be a
    /// regular file's). A seek past the end is not an error here; the next read finds the end.
    public func seekPastContent() throws {
        let distance = remaining + Int64(padding)
        guard distance > 0 else { return }
        guard lseek(fd, off_t(distance), SEEK_CUR) >= 0 else { throw StoreError.io(operation: "cannot seek in", path: path, errno: errno) }
        remaining = 0
        padding = 0
    }

    /// Reads the current entry's content whole, for small documents such as `index.json`.
    public func readAll(limit: Int64 = 16 << 20) throws -> [UInt8] {
        guard remaining <= limit else { throw StoreError.invalidArchive(archive: path, reason: "a metadata entry is larger than \(limit) bytes") }
        var result: [UInt8] = []
        try readContent { result.append(contentsOf: $0) }
        return result
    }

    private func skipRest() throws {
        if remaining > 0 { try readContent { _ in } }
        if padding > 0 {
            var scratch = [UInt8](repeating: 0, count: padding)
            let count = try scratch.withUnsafeMutableBytes { try FileSystem.readFull(fd, $0, path: path) }
            if count < padding { throw StoreError.invalidArchive(archive: path, reason: "truncated padding") }
            padding = 0
        }
    }

    private func readBlock() throws -> [UInt8]? {
        var block = [UInt8](repeating: 0, count: 512)
        let count = try block.withUnsafeMutableBytes { try FileSystem.readFull(fd, $0, path: path) }
        if count == 0 { return nil }
        if count < 512 { throw StoreError.invalidArchive(archive: path, reason: "truncated header") }
        return block
    }

    private func readSmallContent(_ size: Int64) throws -> [UInt8] {
        guard size <= 1 << 20 else { throw StoreError.invalidArchive(archive: path, reason: "extended header over 1 MiB") }
        remaining = size
        padding = TarWriter.padding(size)
        let bytes = try readAll()
        try skipRest()
        return bytes
    }

    private func checkChecksum(_ block: [UInt8]) throws {
        let stored = try Self.number(block[148..<156], archive: path)
        var sum: Int64 = 0
        for (index, byte) in block.enumerated() { sum += (148..<156).contains(index) ? 32 : Int64(byte) }
        if stored != sum { throw StoreError.invalidArchive(archive: path, reason: "header checksum mismatch (not a tar file?)") }
    }

    static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// An octal field, or GNU base-256 when the high bit of the first byte is set.
    static func number(_ field: ArraySlice<UInt8>, archive: String) throws -> Int64 {
        if let first = field.first, first & 0x80 != 0 {
            var value: Int64 = Int64(first & 0x7f)
            for byte in field.dropFirst() {
                guard value < Int64.max >> 8 else { throw StoreError.invalidArchive(archive: archive, reason: "numeric field overflows") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in field {
            if byte == 0 || byte == UInt8(ascii: " ") {
                if seenDigit { break } else { continue }
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value < Int64.max >> 3 else {
                throw StoreError.invalidArchive(archive: archive, reason: "invalid numeric field in a header")
            }
            value = value * 8 + Int64(byte - UInt8(ascii: "0"))
            seenDigit = true
        }
        return value
    }

    static func paxRecords(_ bytes: [UInt8], archive: String) throws -> [(String, String)] {
        var records: [(String, String)] = []
        var index = 0
        while index < bytes.count {
            guard let space = bytes[index...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: bytes[index..<space], as: UTF8.self)), length > 0,
                index + length <= bytes.count
            else { throw StoreError.invalidArchive(archive: archive, reason: "malformed PAX header") }
            let record = bytes[(space + 1)..<(index + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                records.append((String(decoding: record[..<equals], as: UTF8.self), String(decoding: record[(equals + 1)...], as: UTF8.self)))
            }
            index += length
        }
        return records
    }
}
