import Foundation
import VesselStore

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
        let bytes = try FileSystem.readFile(path, limit: 1 << 31)
        try self.init(bytes: bytes, path: path)
    }

    init(bytes: [UInt8], path: String) throws {
        self.path = path
        func fail(_ reason: String) -> FormatError { FormatError(path: path, reason: reason) }
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else { throw fail("no ELF magic") }
        guard bytes[4] == 2 else { throw fail("not a 64-bit object") }
        guard bytes[5] == 1 else { throw fail("not little-endian") }
        func u16(_ offset: Int) throws -> UInt16 {
            guard offset >= 0, offset + 2 <= bytes.count else { throw fail("truncated at byte \(offset)") }
            return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
        }
        func u32(_ offset: Int) throws -> UInt32 {
            guard offset >= 0, offset + 4 <= bytes.count else { throw fail("truncated at byte \(offset)") }
            return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
        }
        func u64(_ offset: Int) throws -> UInt64 {
            guard offset >= 0, offset + 8 <= bytes.count else { throw fail("truncated at byte \(offset)") }
            return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
        }
        func string(at offset: Int) throws -> String {
            guard offset >= 0, offset < bytes.count else { throw fail("a string at byte \(offset) lies outside the file") }
            var end = offset
            while end < bytes.count, bytes[end] != 0 { end += 1 }
            return String(decoding: bytes[offset..<end], as: UTF8.self)
        }
        machine = try u16(18)
        let programHeaders = Int(try u64(32))
        let entrySize = Int(try u16(54))
        let count = Int(try u16(56))
        guard entrySize >= 56 else { throw fail("program header entries of \(entrySize) bytes") }

        struct Load { var vaddr: UInt64; var offset: UInt64; var size: UInt64 }
        var loads: [Load] = []
        var dynamic: (offset: Int, size: Int)?
        interpreter = nil
        for index in 0..<count {
            let base = programHeaders + index * entrySize
            let type = try u32(base)
            let offset = try u64(base + 8), vaddr = try u64(base + 16), fileSize = try u64(base + 32)
            switch type {
            case 1: loads.append(Load(vaddr: vaddr, offset: offset, size: fileSize))  // PT_LOAD
            case 2: dynamic = (Int(offset), Int(fileSize))  // PT_DYNAMIC
            case 3: interpreter = try string(at: Int(offset))  // PT_INTERP
            default: break
            }
        }
        needed = []
        runpath = []
        rpath = []
        soname = nil
        guard let dynamic else { return }
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
        let tableOffset = Int(stringTable - segment.vaddr + segment.offset)
        needed = try neededOffsets.map { try string(at: tableOffset + Int($0)) }
        func paths(_ offset: UInt64?) throws -> [String] {
            guard let offset else { return [] }
            return try string(at: tableOffset + Int(offset)).split(separator: ":").map(String.init)
        }
        runpath = try paths(runpathOffset)
        rpath = try paths(rpathOffset)
        soname = try sonameOffset.map { try string(at: tableOffset + Int($0)) }
    }
}
