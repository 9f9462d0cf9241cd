import Foundation
import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// What the dynamic loader needs to know about an ELF file: its interpreter, the libraries it
/// names (`DT_NEEDED`) and where it asks them to be looked for (`DT_RUNPATH`, `DT_RPATH`).
///
/// Only 64-bit little-endian objects are read, which is every Linux target Vessel ships for
/// (x86-64, aarch64). See the System V ABI, "Object Files" and "Dynamic Linking", and
/// https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.dynamic.html
struct ELFFile {
    var path: String
    /// `e_machine`: 62 for x86-64, 183 for aarch64.
    var machine: UInt16
    /// `PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`; nil for a shared library or a static binary.
    var interpreter: String?
    var needed: [String]
    var runpath: [String]
    var rpath: [String]
    /// `DT_SONAME`, for a shared library.
    var soname: String?

    struct FormatError: Error, CustomStringConvertible {
        var path: String
        var reason: String
        var description: String { "\(path) is not an ELF file Vessel can read: \(reason)" }
    }

    init(path: String) throws {
        // Only the headers, the dynamic section and its strings are read, never the whole file.
        let fd = try FileSystem.openForReading(path)
        defer { close(fd) }
        let size = try FileSystem.size(of: path)
        try self.init(path: path, size: Int(size)) { offset, count in
            var bytes = [UInt8](repeating: 0, count: count)
            let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return read <= 0 ? [] : Array(bytes[0..<read])
        }
    }

    init(bytes: [UInt8], path: String) throws {
        try self.init(path: path, size: bytes.count) { offset, count in
            guard offset >= 0, offset < bytes.count else { return [] }
            return Array(bytes[offset..<min(bytes.count, offset + count)])
        }
    }

    /// Parses through `read(offset, count)`, which returns up to `count` bytes at `offset`.
    private init(path: String, size: Int, read: (Int, Int) -> [UInt8]) throws {
        self.path = path
        func fail(_ reason: String) -> FormatError { FormatError(path: path, reason: reason) }
        func bytes(_ offset: Int, _ count: Int) throws -> [UInt8] {
            guard offset >= 0, count >= 0, count <= size, offset <= size - count else { throw fail("truncated at byte \(offset)") }
            let result = read(offset, count)
            guard result.count == count else { throw fail("cannot read \(count) bytes at \(offset)") }
            return result
        }
        let header = try bytes(0, min(size, 64))
        guard header.count >= 64, header[0] == 0x7F, header[1] == 0x45, header[2] == 0x4C, header[3] == 0x46 else { throw fail("no ELF magic") }
        guard header[4] == 2 else { throw fail("not a 64-bit object") }
        guard header[5] == 1 else { throw fail("not little-endian") }
        func little<T: FixedWidthInteger>(_ data: [UInt8], _ at: Int, as: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reduce(T(0)) { $0 | T(data[at + $1]) << (8 * $1) }
        }
        func u16(_ offset: Int) throws -> UInt16 { little(try bytes(offset, 2), 0, as: UInt16.self) }
        func u32(_ offset: Int) throws -> UInt32 { little(try bytes(offset, 4), 0, as: UInt32.self) }
        func u64(_ offset: Int) throws -> UInt64 { little(try bytes(offset, 8), 0, as: UInt64.self) }
        func string(at offset: Int) throws -> String {
            guard offset >= 0, offset < size else { throw fail("a string at byte \(offset) lies outside the file") }
            var result: [UInt8] = []
            var position = offset
            while position < size {
                let chunk = read(position, min(256, size - position))
                guard !chunk.isEmpty else { break }
                if let end = chunk.firstIndex(of: 0) {
                    result += chunk[..<end]
                    break
                }
                result += chunk
                position += chunk.count
            }
            return String(decoding: result, as: UTF8.self)
        }
        machine = try u16(18)
        let programHeaders = Int(truncatingIfNeeded: try u64(32))
        let entrySize = Int(try u16(54))
        let count = Int(try u16(56))
        guard entrySize >= 56 else { throw fail("program header entries of \(entrySize) bytes") }

        struct Load { var vaddr: UInt64; var offset: UInt64; var size: UInt64 }
        var loads: [Load] = []
        var dynamic: (offset: Int, size: Int)?
        interpreter = nil
        for index in 0..<count {
            let base = programHeaders &+ index &* entrySize
            let type = try u32(base)
            let offset = try u64(base + 8), vaddr = try u64(base + 16), fileSize = try u64(base + 32)
            switch type {
            case 1: loads.append(Load(vaddr: vaddr, offset: offset, size: fileSize))  // PT_LOAD
            case 2: dynamic = (Int(truncatingIfNeeded: offset), Int(truncatingIfNeeded: fileSize))  // PT_DYNAMIC
            case 3: interpreter = try string(at: Int(truncatingIfNeeded: offset))  // PT_INTERP
            default: break
            }
        }
        needed = []
        runpath = []
        rpath = []
        soname = nil
        guard let dynamic else { return }
        guard dynamic.offset >= 0, dynamic.size >= 0, dynamic.offset <= size, dynamic.size <= size - dynamic.offset else {
            throw fail("the dynamic section lies outside the file")
        }
        var neededOffsets: [UInt64] = []
        var runpathOffset: UInt64?, rpathOffset: UInt64?, sonameOffset: UInt64?, stringTable: UInt64?
        var position = dynamic.offset
        while position + 16 <= dynamic.offset + dynamic.size {
            let tag = try u64(position), value = try u64(position + 8)
            position += 16
            switch tag {
            case 0: position = Int.max - 16  // DT_NULL
            case 1: neededOffsets.append(value)
            case 5: stringTable = value
            case 14: sonameOffset = value
            case 15: rpathOffset = value
            case 29: runpathOffset = value
            default: break
            }
            if position >= Int.max - 16 { break }
        }
        guard let stringTable else {
            if neededOffsets.isEmpty { return }
            throw fail("a dynamic section without a string table")
        }
        // DT_STRTAB is an address; find the file offset through the segment that maps it.
        guard let segment = loads.first(where: { stringTable >= $0.vaddr && stringTable < $0.vaddr + $0.size }) else {
            throw fail("the dynamic string table lies in no loaded segment")
        }
        let tableOffset = Int(truncatingIfNeeded: (stringTable &- segment.vaddr) &+ segment.offset)
        needed = try neededOffsets.map { try string(at: tableOffset &+ Int(truncatingIfNeeded: $0)) }
        func paths(_ offset: UInt64?) throws -> [String] {
            guard let offset else { return [] }
            return try string(at: tableOffset &+ Int(truncatingIfNeeded: offset)).split(separator: ":").map(String.init)
        }
        runpath = try paths(runpathOffset)
        rpath = try paths(rpathOffset)
        soname = try sonameOffset.map { try string(at: tableOffset &+ Int(truncatingIfNeeded: $0)) }
    }
}
