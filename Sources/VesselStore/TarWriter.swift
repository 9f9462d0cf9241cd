/// Writes a tar stream that is the same bytes for the same content on any machine: entries in
/// the order given (callers sort them), mtime 0, uid/gid 0, no user or group names, fixed modes.
///
/// Headers are POSIX ustar; a PAX extended header is added for what ustar cannot hold (paths
/// over its limits, non-ASCII paths, sizes of 8 GiB and more).
/// See https://pubs.opengroup.org/onlinepubs/9699919799/utilities/pax.html#tag_20_92_13
public struct TarWriter {
    public enum EntryKind: Sendable {
        case file(size: Int64, executable: Bool)
        case directory
        case symlink(target: String)
    }

    /// Emits the bytes; a blob ingest or a file.
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var pendingPadding = 0

    public init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.sink = sink
    }

    /// Writes an entry's header; a file's content must follow through ``writeContent(_:)``, then
    /// ``finishEntry(size:)``.
    ///
    /// - Parameter mode: overrides the fixed mode (`/tmp` in an image is 01777).
    public mutating func writeHeader(path: String, kind: EntryKind, mode modeOverride: Int? = nil) throws {
        var name = path
        if case .directory = kind, !name.hasSuffix("/") { name += "/" }
        var size: Int64 = 0
        var typeflag = UInt8(ascii: "0")
        var mode = 0o644
        var linkName = ""
        switch kind {
        case .file(let fileSize, let executable):
            size = fileSize
            mode = executable ? 0o755 : 0o644
        case .directory:
            typeflag = UInt8(ascii: "5")
            mode = 0o755
        case .symlink(let target):
            typeflag = UInt8(ascii: "2")
            mode = 0o777
            linkName = target
        }
        if let modeOverride { mode = modeOverride }
        var pax: [(String, String)] = []
        let split = Self.splitUstarName(name)
        if split == nil { pax.append(("path", name)) }
        if size > 0o77777777777 { pax.append(("size", String(size))) }
        if linkName.utf8.count > 100 || !linkName.utf8.allSatisfy({ $0 < 0x80 }) { pax.append(("linkpath", linkName)) }
        if !pax.isEmpty {
            var records: [UInt8] = []
            for (key, value) in pax { records += Self.paxRecord(key, value) }
            let header = Self.header(name: "././@PaxHeader", prefix: "", size: Int64(records.count), typeflag: UInt8(ascii: "x"), mode: 0o644, linkName: "")
            try emit(header)
            try emit(records)
            try emit([UInt8](repeating: 0, count: Self.padding(Int64(records.count))))
        }
        let (prefix, shortName) = split ?? ("", String(decoding: name.utf8.suffix(100).filter { $0 < 0x80 }, as: UTF8.self))
        let header = Self.header(
            name: shortName, prefix: prefix, size: size, typeflag: typeflag, mode: mode,
            linkName: String(decoding: linkName.utf8.prefix(100), as: UTF8.self))
        try emit(header)
        pendingPadding = Self.padding(size)
    }

    public func writeContent(_ buffer: UnsafeRawBufferPointer) throws {
        try sink(buffer)
    }

    /// Pads the entry's content to the 512-byte block boundary.
    public mutating func finishEntry() throws {
        if pendingPadding > 0 { try emit([UInt8](repeating: 0, count: pendingPadding)) }
        pendingPadding = 0
    }

    /// The end-of-archive marker: two zero blocks.
    public func finish() throws {
        try emit([UInt8](repeating: 0, count: 1024))
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink($0) }
    }

    static func padding(_ size: Int64) -> Int {
        Int((512 - size % 512) % 512)
    }

    /// Splits a path into ustar's 155-byte prefix and 100-byte name at a slash, or nil if it
    /// cannot be held there (too long, or not ASCII).
    static func splitUstarName(_ path: String) -> (prefix: String, name: String)? {
        let bytes = Array(path.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 && $0 != 0 }) else { return nil }
        if bytes.count <= 100 { return ("", path) }
        for index in stride(from: min(bytes.count - 1, 155), through: 1, by: -1) where bytes[index] == UInt8(ascii: "/") {
            let name = bytes[(index + 1)...]
            if name.count <= 100, !name.isEmpty {
                return (String(decoding: bytes[..<index], as: UTF8.self), String(decoding: name, as: UTF8.self))
            }
        }
        return nil
    }

    /// One PAX record, `"<length> <key>=<value>\n"`, where the length counts itself.
    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length += 1 }
        return Array("\(length)\(body)".utf8)
    }

    static func header(name: String, prefix: String, size: Int64, typeflag: UInt8, mode: Int, linkName: String) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int64, at offset: Int, width: Int) {
            // width-1 octal digits, zero-padded, then NUL.
            var digits = String(value, radix: 8)
            digits = String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
            put(digits, at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(Int64(mode), at: 100, width: 8)
        octal(0, at: 108, width: 8)  // uid
        octal(0, at: 116, width: 8)  // gid
        octal(min(size, 0o77777777777), at: 124, width: 12)
        octal(0, at: 136, width: 12)  // mtime
        block[156] = typeflag
        put(linkName, at: 157, width: 100)
        put("ustar", at: 257, width: 6)  // magic "ustar\0"
        put("00", at: 263, width: 2)  // version
        octal(0, at: 329, width: 8)  // devmajor
        octal(0, at: 337, width: 8)  // devminor
        put(prefix, at: 345, width: 155)
        // The checksum is computed with its own field as spaces.
        for index in 148..<156 { block[index] = UInt8(ascii: " ") }
        let sum = block.reduce(0) { $0 + Int64($1) }
        var digits = String(sum, radix: 8)
        digits = String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        put(digits, at: 148, width: 6)
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        return block
    }
}
