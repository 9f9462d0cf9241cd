import Foundation
import Testing
import VesselStore
import VesselTestSupport

/// A store in a fresh directory, removed when the test ends.
final class ScratchStore {
    let directory: String
    let store: Store

    init() throws {
        directory = try TestSupport.makeTemporaryDirectory("store")
        store = try Store(root: directory + "/home")
    }

    deinit { TestSupport.remove(directory) }

    /// Stores a one-layer manifest and tags it; returns its descriptor.
    func storeManifest(layers: [[UInt8]], tag: String) throws -> Descriptor {
        let config = try store.ingest(Array("{}".utf8), mediaType: OCIMediaType.empty)
        let descriptors = try layers.map { try store.ingest($0, mediaType: OCIMediaType.layerTar) }
        let manifest = ImageManifest(artifactType: "application/vnd.test", config: config, layers: descriptors, annotations: nil)
        let descriptor = try store.ingest(Array(CanonicalJSON.encode(manifest)), mediaType: OCIMediaType.imageManifest)
        try store.tag(descriptor, as: try Reference(parsing: tag))
        return descriptor
    }

    var blobNames: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/blobs/sha256").sorted()) ?? []
    }
}

@Suite("store")
struct StoreTests {
    @Test("a dead writer's temporaries are reclaimed by the next writer; a live writer's, fresh ones and resumable downloads are kept")
    func reclaimsAbandonedTemporaries() throws {
        let scratch = try ScratchStore()
        let tmp = scratch.store.root + "/tmp"
        let old = Date(timeIntervalSinceNow: -600)
        func make(_ name: String, age: Date?) throws {
            try Data(repeating: 7, count: 1 << 16).write(to: URL(fileURLWithPath: tmp + "/" + name))
            if let age { try FileManager.default.setAttributes([.modificationDate: age], ofItemAtPath: tmp + "/" + name) }
        }
        // A real writer, then a real kill -9: a process holding its temporary's lock.
        let writer = Process()
        writer.executableURL = URL(fileURLWithPath: TestSupport.python)
        writer.arguments = [
            "-c",
            """
            import fcntl, os, sys, time
            fd = os.open('\(tmp)/blob-killed', os.O_WRONLY | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, b'x' * 4096)
            os.utime('\(tmp)/blob-killed', (0, 0))
            print('locked', flush=True)
            time.sleep(600)
            """
        ]
        let out = Pipe()
        writer.standardOutput = out
        try writer.run()
        _ = out.fileHandleForReading.readData(ofLength: 7)
        try make("blob-abandoned", age: old)
        try make(".tmp-abandoned", age: old)
        try make("blob-fresh", age: nil)
        try make("partial-0123", age: old)
        let live = open(tmp + "/blob-fresh", O_RDONLY)
        defer { close(live) }
        try make("blob-live", age: old)
        let liveLock = open(tmp + "/blob-live", O_RDONLY)
        defer { close(liveLock) }
        #expect(flock(liveLock, LOCK_EX) == 0)

        try scratch.store.withWriterLock {}
        var names = Set(try FileManager.default.contentsOfDirectory(atPath: tmp))
        #expect(names == ["blob-killed", "blob-fresh", "partial-0123", "blob-live"], "\(names)")

        kill(writer.processIdentifier, SIGKILL)
        writer.waitUntilExit()
        let reclaimed = scratch.store.reclaimAbandonedTemporaries()
        names = Set(try FileManager.default.contentsOfDirectory(atPath: tmp))
        #expect(names == ["blob-fresh", "partial-0123", "blob-live"], "\(names)")
        #expect(reclaimed.files == 1 && reclaimed.bytes == 4096)
    }

    @Test("a new store is an OCI layout that skopeo reads")
    func layout() throws {
        let scratch = try ScratchStore()
        _ = try scratch.storeManifest(layers: [Array("hello".utf8)], tag: "demo:1")
        let marker = try String(contentsOfFile: scratch.store.root + "/oci-layout", encoding: .utf8)
        #expect(marker == #"{"imageLayoutVersion":"1.0.0"}"#)
        let result = try TestSupport.run("skopeo", ["inspect", "--raw", "oci:\(scratch.store.root):demo:1"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("application/vnd.test"))
    }

    @Test("file ingest matches openssl's digest and stores each blob once")
    func ingestFile() throws {
        let scratch = try ScratchStore()
        let path = scratch.directory + "/weights.bin"
        // 9 MiB + 3 bytes: several pipeline chunks and a ragged tail.
        var bytes = [UInt8](repeating: 0, count: 9 << 20 + 3)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2654435761 >> 13) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let (digest, size) = try scratch.store.ingest(file: path)
        #expect(digest.description == (try TestSupport.opensslDigest(path)))
        #expect(size == Int64(bytes.count))
        #expect(try TestSupport.opensslDigest(scratch.store.blobPath(digest)) == digest.description)
        // Again, and from a copy elsewhere: same digest, still one blob, nothing left in tmp.
        let copy = scratch.directory + "/copy.bin"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(try scratch.store.ingest(file: copy).digest == digest)
        #expect(scratch.blobNames == [digest.hex])
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.store.root + "/tmp").isEmpty)
    }

    @Test("an empty file is a valid blob")
    func emptyFile() throws {
        let scratch = try ScratchStore()
        let path = scratch.directory + "/empty"
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        let (digest, size) = try scratch.store.ingest(file: path)
        #expect(size == 0)
        #expect(digest.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("content that does not match its expected digest is not stored")
    func expectedDigestMismatch() throws {
        let scratch = try ScratchStore()
        let ingest = try scratch.store.beginIngest()
        try ingest.append(Array("payload".utf8))
        let wrong = Digest(hex: String(repeating: "0", count: 64))!
        #expect(throws: StoreError.self) { try ingest.commit(expecting: wrong) }
        #expect(scratch.blobNames.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.store.root + "/tmp").isEmpty)
    }

    @Test("tags resolve, move and are removed; digests resolve by name")
    func tags() throws {
        let scratch = try ScratchStore()
        let first = try scratch.storeManifest(layers: [Array("a".utf8)], tag: "demo:1")
        let second = try scratch.storeManifest(layers: [Array("b".utf8)], tag: "demo:2")
        #expect(try scratch.store.resolve(Reference(parsing: "demo:1")).digest == first.digest)
        #expect(try scratch.store.resolve(Reference(parsing: "demo@\(second.digest)")).digest == second.digest)
        #expect(throws: StoreError.self) { try scratch.store.resolve(Reference(parsing: "other@\(second.digest)")) }
        try scratch.store.tag(second, as: Reference(parsing: "demo:1"))
        #expect(try scratch.store.resolve(Reference(parsing: "demo:1")).digest == second.digest)
        #expect(try scratch.store.list().map(\.refName) == ["demo:1", "demo:2"])
        #expect(try scratch.store.untag(Reference(parsing: "demo@\(second.digest)")) == ["demo:1", "demo:2"])
        #expect(try scratch.store.list().isEmpty)
        #expect(throws: StoreError.self) { try scratch.store.untag(Reference(parsing: "demo:1")) }
    }

    @Test("gc removes exactly the unreferenced blobs and temporary leftovers")
    func garbageCollection() throws {
        let scratch = try ScratchStore()
        let kept = try scratch.storeManifest(layers: [Array("shared".utf8), Array("kept".utf8)], tag: "keep:1")
        _ = try scratch.storeManifest(layers: [Array("shared".utf8), Array("dropped".utf8)], tag: "drop:1")
        try scratch.store.untag(Reference(parsing: "drop:1"))
        _ = FileManager.default.createFile(atPath: scratch.store.root + "/tmp/blob-interrupted", contents: Data("partial".utf8))
        let live = Set(try scratch.store.closure(of: kept).map(\.digest.hex))
        let dry = try scratch.store.collectGarbage(dryRun: true)
        #expect(dry.removedBlobs.count == 2)  // the dropped layer and the dropped manifest
        #expect(scratch.blobNames.count == live.count + 2)
        let report = try scratch.store.collectGarbage()
        #expect(report.removedBlobs.count == 2)
        #expect(report.removedTemporaryFiles == 1)
        #expect(Set(scratch.blobNames) == live)
        _ = try scratch.store.verify(kept)
        #expect(try scratch.store.collectGarbage().removedBlobs.isEmpty)
    }

    @Test("gc removes nothing when a tagged manifest is unreadable")
    func garbageCollectionRefusesDamage() throws {
        let scratch = try ScratchStore()
        let manifest = try scratch.storeManifest(layers: [Array("x".utf8)], tag: "demo:1")
        _ = try scratch.store.ingest(Array("orphan".utf8), mediaType: OCIMediaType.layerTar)
        try TestSupport.flipByte(in: scratch.store.blobPath(manifest.digest), at: 3)
        let before = scratch.blobNames
        #expect(throws: StoreError.self) { try scratch.store.collectGarbage() }
        #expect(scratch.blobNames == before)
    }

    @Test("gc refuses to guess what a manifest of an unknown type references")
    func garbageCollectionUnknownManifest() throws {
        let scratch = try ScratchStore()
        let layer = try scratch.store.ingest(Array("needed".utf8), mediaType: OCIMediaType.layerTar)
        let document = try scratch.store.ingest(Array(#"{"blobs":["\#(layer.digest)"]}"#.utf8), mediaType: "application/vnd.example.manifest+json")
        try scratch.store.tag(document, as: Reference(parsing: "other:1"))
        #expect(performing: { try scratch.store.collectGarbage() }, throws: { "\($0)".contains("not one vessel can read") })
        #expect(scratch.store.hasBlob(layer.digest))
    }

    @Test("verify names the blob whose content changed")
    func verifyDetectsTampering() throws {
        let scratch = try ScratchStore()
        let manifest = try scratch.storeManifest(layers: [Array("layer one".utf8), Array("layer two".utf8)], tag: "demo:1")
        for blob in try scratch.store.closure(of: manifest).dropFirst() {
            try TestSupport.flipByte(in: scratch.store.blobPath(blob.digest), at: 0)
            #expect {
                _ = try scratch.store.verify(manifest)
            } throws: { error in
                guard case StoreError.digestMismatch(let expected, _, _) = error else { return false }
                return expected == blob.digest && "\(error)".contains(blob.digest.description)
            }
            try TestSupport.flipByte(in: scratch.store.blobPath(blob.digest), at: 0)
        }
        _ = try scratch.store.verify(manifest)
    }

    @Test("a newer layout version is refused")
    func newerLayout() throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { TestSupport.remove(directory) }
        try TestSupport.write(#"{"imageLayoutVersion":"2.0.0"}"#, to: directory + "/oci-layout")
        #expect { try Store(root: directory) } throws: { "\($0)".contains("version 2.0.0") }
    }
}
