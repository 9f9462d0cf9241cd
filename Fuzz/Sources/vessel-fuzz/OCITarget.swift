import Foundation
import VesselArtifact
import VesselStore

/// The `oci` target: a store holding the bundled iris example, packed once at start. Each input
/// is stored as a manifest blob beside it (its seeds are that artifact's own manifest and an
/// index naming it, so mutations start from documents whose digests resolve), read as an
/// artifact, walked as `gc` and `verify` walk it, and removed again.
enum OCITarget {
    nonisolated(unsafe) static var store: Store?

    static func prepare() -> [String] {
        let root = "\(FuzzTarget.scratch)/oci-store"
        let seeds = "\(FuzzTarget.scratch)/oci-seeds"
        do {
            let store = try Store(root: root)
            let packed = try Packer(store: store).pack(directory: "\(FuzzTarget.repository)/Examples/iris")
            self.store = store
            try FileManager.default.createDirectory(atPath: seeds, withIntermediateDirectories: true)
            let manifest = try store.readBlob(packed.manifest, context: "seed")
            try manifest.write(to: URL(fileURLWithPath: "\(seeds)/manifest.json"))
            let index = try CanonicalJSON.encode(ImageIndex(manifests: [packed.manifest]))
            try index.write(to: URL(fileURLWithPath: "\(seeds)/index.json"))
            return [seeds]
        } catch {
            FileHandle.standardError.write(Data("vessel-fuzz oci: cannot pack Examples/iris: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ bytes: [UInt8]) {
        guard let store else { return }
        // Bytes the store already holds (the artifact's own blobs) stay; others go again after.
        let existed = store.hasBlob(Digest(bytes: bytes))
        for mediaType in [OCIMediaType.imageManifest, OCIMediaType.imageIndex] {
            guard let descriptor = try? store.ingest(bytes, mediaType: mediaType) else { return }
            defer { if !existed { unlink(store.blobPath(descriptor.digest)) } }
            _ = try? store.closure(of: descriptor)
            _ = try? store.verify(descriptor)
            if let reference = try? Reference(parsing: "fuzz:1") {
                _ = try? Artifact.load(descriptor: descriptor, as: reference, from: store)
            }
        }
    }
}
