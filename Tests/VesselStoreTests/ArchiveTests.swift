import Foundation
import Testing
import VesselStore
import VesselTestSupport

func writeTar(_ path: String, _ entries: [(String, TarWriter.EntryKind, [UInt8])]) throws {
    try Data(TestSupport.tarBytes(entries)).write(to: URL(fileURLWithPath: path))
}

@Suite("tar")
struct TarTests {
    @Test("outside readers list what the writer wrote, long names and links included")
    func outsideReaders() throws {
        let directory = try TestSupport.makeTemporaryDirectory("tar")
        defer { TestSupport.remove(directory) }
        let longName = "code/" + String(repeating: "deep/", count: 40) + "module.py"
        let unicode = "docs/résumé-模型.md"
        try writeTar(
            directory + "/t.tar",
            [
                ("code", .directory, []),
                (longName, .file(size: 5, executable: false), Array("print".utf8)),
                ("code/run.sh", .file(size: 2, executable: true), Array("#!".utf8)),
                ("code/link", .symlink(target: "run.sh"), []),
                (unicode, .file(size: 1, executable: false), Array("x".utf8))
            ])
        for tool in ["tar", "bsdtar"] {
            let listing = try TestSupport.run(tool, ["-tvf", directory + "/t.tar"])
            #expect(listing.status == 0, "\(tool): \(listing.standardError)")
            #expect(listing.standardOutput.contains(longName), "\(tool)")
            #expect(listing.standardOutput.contains("code/link -> run.sh"), "\(tool)")
            // GNU tar prints `0/0 … 1970-01-01`, bsdtar `0 0 … Jan  1  1970`.
            let executableLine = listing.standardOutput.split(separator: "\n").first { $0.hasSuffix("code/run.sh") } ?? ""
            #expect(executableLine.hasPrefix("-rwxr-xr-x"), "\(tool): \(executableLine)")
            #expect(executableLine.contains("0/0") || executableLine.contains(" 0 0 "), "\(tool): \(executableLine)")
            #expect(executableLine.contains("1970"), "\(tool): \(executableLine)")
        }
        let extracted = directory + "/x"
        try FileManager.default.createDirectory(atPath: extracted, withIntermediateDirectories: true)
        #expect(try TestSupport.run("tar", ["-xf", directory + "/t.tar", "-C", extracted]).status == 0)
        #expect(try String(contentsOfFile: extracted + "/" + longName, encoding: .utf8) == "print")
        #expect(FileManager.default.fileExists(atPath: extracted + "/" + unicode))

        // And our reader gives back the same entries.
        let fd = open(directory + "/t.tar", O_RDONLY)
        defer { close(fd) }
        let reader = TarReader(fd: fd, path: "t.tar")
        var seen: [String] = []
        while let entry = try reader.next() {
            seen.append(entry.path)
            if entry.path == longName { #expect(String(decoding: try reader.readAll(), as: UTF8.self) == "print") }
            if entry.path == "code/link" { #expect(entry.kind == .symlink("run.sh")) }
        }
        #expect(seen == ["code/", longName, "code/run.sh", "code/link", unicode])
    }

    @Test("files of 8 GiB and more get a PAX size that readers honour")
    func largeSizes() throws {
        let directory = try TestSupport.makeTemporaryDirectory("tar")
        defer { TestSupport.remove(directory) }
        let size: Int64 = 9 << 30
        var bytes: [UInt8] = []
        var tar = TarWriter { bytes.append(contentsOf: $0) }
        try tar.writeHeader(path: "weights.bin", kind: .file(size: size, executable: false))
        let header = String(decoding: bytes, as: UTF8.self)
        #expect(header.contains("size=\(size)\n"))
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/h.tar"))
        let fd = open(directory + "/h.tar", O_RDONLY)
        defer { close(fd) }
        let entry = try #require(try TarReader(fd: fd, path: "h.tar").next())
        #expect(entry.path == "weights.bin")
        #expect(entry.size == size)
    }

    @Test("the same entries give the same bytes")
    func deterministic() throws {
        func build() throws -> [UInt8] {
            var bytes: [UInt8] = []
            var tar = TarWriter { bytes.append(contentsOf: $0) }
            try tar.writeHeader(path: "a", kind: .directory)
            try tar.writeHeader(path: "a/b", kind: .file(size: 3, executable: false))
            try Array("abc".utf8).withUnsafeBytes { try tar.writeContent($0) }
            try tar.finishEntry()
            try tar.finish()
            return bytes
        }
        let first = try build()
        #expect(first == (try build()))
        #expect(first.count % 512 == 0)
    }
}

@Suite("export and import")
struct ArchiveTests {
    @Test("an export is an oci-archive skopeo reads, and imports back into an empty store")
    func roundTrip() throws {
        let scratch = try ScratchStore()
        let manifest = try scratch.storeManifest(layers: [Array("weights".utf8)], tag: "demo:1")
        let archive = scratch.directory + "/demo.tar"
        try scratch.store.exportArchive(manifest, refName: "demo:1", to: archive)
        let inspect = try TestSupport.run("skopeo", ["inspect", "--raw", "oci-archive:\(archive)"])
        #expect(inspect.status == 0, "\(inspect.standardError)")
        let listing = try TestSupport.run("tar", ["-tvf", archive])
        #expect(listing.standardOutput.contains("blobs/sha256/\(manifest.digest.hex)"))
        #expect(listing.standardOutput.contains("index.json"))

        let other = try Store(root: scratch.directory + "/other")
        let imported = try other.importArchive(from: archive)
        #expect(imported.map(\.refName) == ["demo:1"])
        #expect(try other.resolve(Reference(parsing: "demo:1")).digest == manifest.digest)
        _ = try other.verify(manifest)
        // Exporting twice gives the same archive bytes.
        let again = scratch.directory + "/again.tar"
        try scratch.store.exportArchive(manifest, refName: "demo:1", to: again)
        #expect(try TestSupport.opensslDigest(archive) == (try TestSupport.opensslDigest(again)))
    }

    @Test("archives written by skopeo import, a bare tag taking its name from --as")
    func skopeoArchive() throws {
        let scratch = try ScratchStore()
        let manifest = try scratch.storeManifest(layers: [Array("weights".utf8)], tag: "demo:1")
        let archive = scratch.directory + "/skopeo.tar"
        let copy = try TestSupport.run("skopeo", ["copy", "oci:\(scratch.store.root):demo:1", "oci-archive:\(archive):v7"])
        #expect(copy.status == 0, "\(copy.standardError)")
        let other = try Store(root: scratch.directory + "/other")
        #expect { try other.importArchive(from: archive) } throws: { "\($0)".contains("--as") }
        let imported = try other.importArchive(from: archive, as: Reference(name: "renamed"))
        #expect(imported.map(\.refName) == ["renamed:v7"])
        #expect(imported.first?.descriptor.digest == manifest.digest)
    }

    /// An archive with one good blob plus the given hostile entries.
    static func hostile(_ scratch: ScratchStore, _ extra: [(String, TarWriter.EntryKind, [UInt8])]) throws -> String {
        let path = scratch.directory + "/hostile-\(UUID().uuidString).tar"
        let layout = Array(#"{"imageLayoutVersion":"1.0.0"}"#.utf8)
        try writeTar(path, [("oci-layout", .file(size: Int64(layout.count), executable: false), layout)] + extra)
        return path
    }

    @Test(
        "hostile archives are refused and change nothing",
        arguments: [
            ("../escape", "climbs out with `..`"),
            ("/tmp/absolute", "is an absolute path"),
            ("blobs/sha256/../../../escape", "climbs out with `..`"),
            ("symlink", "is a link"),
            ("mismatch", "is corrupt"),
            ("not-a-digest", "is not named by a sha256 digest"),
            ("missing-blob", "is missing from the store")
        ])
    func hostile(_ kind: String, _ reason: String) throws {
        let scratch = try ScratchStore()
        let payload = Array("evil".utf8)
        let file = TarWriter.EntryKind.file(size: Int64(payload.count), executable: false)
        let entries: [(String, TarWriter.EntryKind, [UInt8])]
        switch kind {
        case "symlink": entries = [("blobs/sha256/link", .symlink(target: "/etc/passwd"), [])]
        case "mismatch": entries = [("blobs/sha256/" + String(repeating: "a", count: 64), file, payload)]
        case "not-a-digest": entries = [("blobs/sha256/evil", file, payload)]
        case "missing-blob":
            let missing = Descriptor(
                mediaType: OCIMediaType.imageManifest, digest: Digest(hex: String(repeating: "b", count: 64))!, size: 10,
                annotations: [OCIAnnotation.refName: "evil:1"])
            let index = try Array(CanonicalJSON.encode(ImageIndex(manifests: [missing])))
            entries = [("index.json", .file(size: Int64(index.count), executable: false), index)]
        default: entries = [(kind, file, payload)]
        }
        let archive = try Self.hostile(scratch, entries)
        let indexBefore = try String(contentsOfFile: scratch.store.root + "/index.json", encoding: .utf8)
        #expect { try scratch.store.importArchive(from: archive) } throws: { error in
            "\(error)".contains(reason)
        }
        #expect(try String(contentsOfFile: scratch.store.root + "/index.json", encoding: .utf8) == indexBefore)
        #expect(!FileManager.default.fileExists(atPath: scratch.store.root + "/escape"))
        #expect(!FileManager.default.fileExists(atPath: scratch.directory + "/escape"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/absolute"))
        #expect(scratch.blobNames.allSatisfy { name in (try? TestSupport.opensslDigest(scratch.store.blobPath(Digest(hex: name)!))) == "sha256:\(name)" })
    }

    @Test("files that are not tar archives get a clear error")
    func notATar() throws {
        let scratch = try ScratchStore()
        let junk = scratch.directory + "/junk.tar"
        try Data((0..<2048).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }).write(to: URL(fileURLWithPath: junk))
        #expect { try scratch.store.importArchive(from: junk) } throws: { "\($0)".contains("not a valid OCI archive") }
        let truncated = scratch.directory + "/truncated.tar"
        let manifest = try scratch.storeManifest(layers: [Array(repeating: 7, count: 5000)], tag: "demo:1")
        try scratch.store.exportArchive(manifest, refName: "demo:1", to: truncated)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: truncated))
        try bytes.prefix(1500).write(to: URL(fileURLWithPath: truncated))
        #expect { try Store(root: scratch.directory + "/o").importArchive(from: truncated) } throws: { "\($0)".contains("truncated") }
    }
}
