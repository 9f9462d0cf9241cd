#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A tagged manifest in the store's `index.json`.
public struct TaggedManifest: Sendable, Hashable {
    /// `org.opencontainers.image.ref.name`, for Vessel's own entries `NAME:TAG`.
    public var refName: String
    public var descriptor: Descriptor

    /// The reference, when the ref name is one Vessel can parse.
    public var reference: Reference? { try? Reference(parsing: refName) }
}

extension Store {
    // MARK: Index

    func readIndex() throws -> ImageIndex {
        try CanonicalJSON.decode(ImageIndex.self, from: Data(FileSystem.readFile(indexPath)), path: indexPath)
    }

    /// Read-modify-write of `index.json` under the index lock, replaced atomically.
    /// `holdingStoreLock`: the caller (`gc`) already holds the store lock exclusively; flock
    /// would block on taking it again through another descriptor.
    func updateIndex<T>(holdingStoreLock: Bool = false, _ change: (inout ImageIndex) throws -> T) throws -> T {
        // Also a writer: `gc` must not sweep `tmp/` while the new index is being written there.
        let writer = holdingStoreLock ? nil : try FileLock(path: FileSystem.join(root, ".lock"), exclusive: false)
        let lock = try FileLock(path: FileSystem.join(root, ".index.lock"), exclusive: true)
        defer { withExtendedLifetime((writer, lock)) {} }
        var index = try readIndex()
        let result = try change(&index)
        index.manifests.sort { ($0.annotations?[OCIAnnotation.refName] ?? "", $0.digest) < ($1.annotations?[OCIAnnotation.refName] ?? "", $1.digest) }
        try FileSystem.writeAtomically(Array(CanonicalJSON.encode(index)), to: indexPath, temporaryDirectory: temporaryDirectory)
        return result
    }

    /// Every tagged manifest, sorted by reference.
    public func list() throws -> [TaggedManifest] {
        try readIndex().manifests.compactMap { descriptor in
            guard let name = descriptor.annotations?[OCIAnnotation.refName] else { return nil }
            return TaggedManifest(refName: name, descriptor: descriptor)
        }
    }

    /// Finds the manifest a reference names: by `NAME:TAG`, or by `NAME@DIGEST` among the
    /// manifests tagged under that name.
    public func resolve(_ reference: Reference) throws -> Descriptor {
        let entries = try list()
        if let digest = reference.digest {
            if let entry = entries.first(where: { $0.descriptor.digest == digest && $0.reference?.name == reference.name }) {
                return entry.descriptor
            }
        } else if let entry = entries.first(where: { $0.refName == reference.refName }) {
            return entry.descriptor
        }
        throw StoreError.notFound(reference.description)
    }

    /// Points `reference` (which must carry a tag) at `descriptor`, replacing what it named before.
    public func tag(_ descriptor: Descriptor, as reference: Reference) throws {
        guard let refName = reference.refName else { throw StoreError.notFound(reference.description) }
        guard hasBlob(descriptor.digest) else { throw StoreError.blobMissing(descriptor.digest, context: "manifest for \(refName)") }
        var entry = descriptor
        var annotations = entry.annotations ?? [:]
        annotations[OCIAnnotation.refName] = refName
        entry.annotations = annotations
        try updateIndex { index in
            index.manifests.removeAll { $0.annotations?[OCIAnnotation.refName] == refName }
            index.manifests.append(entry)
        }
    }

    /// Removes a tag (or, for `NAME@DIGEST`, every tag of that name on that manifest). Blobs stay
    /// until `gc`. Returns the ref names removed.
    @discardableResult
    public func untag(_ reference: Reference) throws -> [String] {
        let removed: [String] = try updateIndex { index in
            let matches = index.manifests.filter { descriptor in
                guard let refName = descriptor.annotations?[OCIAnnotation.refName] else { return false }
                if let digest = reference.digest {
                    return descriptor.digest == digest && (try? Reference(parsing: refName))?.name == reference.name
                }
                return refName == reference.refName
            }
            index.manifests.removeAll { matches.contains($0) }
            return matches.compactMap { $0.annotations?[OCIAnnotation.refName] }
        }
        if removed.isEmpty { throw StoreError.notFound(reference.description) }
        return removed
    }

    // MARK: Graph

    /// The manifest and every blob it references (config, layers, nested manifests), each
    /// manifest read and checked against its digest on the way.
    public func closure(of descriptor: Descriptor) throws -> [Descriptor] {
        var result: [Descriptor] = []
        var seen: Set<Digest> = []
        try collect(descriptor, into: &result, seen: &seen)
        return result
    }

    /// `descriptor` is a manifest position: the root, or an entry of an index.
    private func collect(_ descriptor: Descriptor, into result: inout [Descriptor], seen: inout Set<Digest>) throws {
        guard seen.insert(descriptor.digest).inserted else { return }
        result.append(descriptor)
        switch descriptor.mediaType {
        case OCIMediaType.imageManifest, OCIMediaType.dockerManifest:
            let data = try readBlob(descriptor, context: "manifest")
            let manifest = try CanonicalJSON.decode(ImageManifest.self, from: data, path: blobPath(descriptor.digest))
            for child in [manifest.config] + manifest.layers where seen.insert(child.digest).inserted {
                result.append(child)
            }
        case OCIMediaType.imageIndex, OCIMediaType.dockerManifestList:
            let data = try readBlob(descriptor, context: "index")
            let index = try CanonicalJSON.decode(ImageIndex.self, from: data, path: blobPath(descriptor.digest))
            for child in index.manifests { try collect(child, into: &result, seen: &seen) }
        default:
            // A manifest of an unknown type could reference anything; treating it as a leaf
            // would let `gc` delete what it needs.
            throw StoreError.corrupt(
                path: blobPath(descriptor.digest),
                reason: "manifest media type \(descriptor.mediaType) is not one vessel can read")
        }
    }

    /// Re-hashes every blob a manifest references; throws on the first that is missing or does
    /// not match, naming it.
    /// `skipping`: blobs the caller has just checked another way (a signature check re-hashes
    /// every layer); they are listed but not read again.
    public func verify(_ descriptor: Descriptor, skipping: Set<Digest> = [], progress: (Descriptor) -> ProgressBar = { _ in .silent() }) throws -> [Descriptor]
    {
        let blobs = try closure(of: descriptor)
        for blob in blobs where !skipping.contains(blob.digest) {
            let context = blob.annotations?[OCIAnnotation.title] ?? blob.mediaType
            let bar = progress(blob)
            try verifyBlob(blob, context: context, progress: bar)
            bar.finish()
        }
        return blobs
    }

    // MARK: Garbage collection

    public struct CollectionReport: Sendable {
        public var removedBlobs: [Digest]
        public var freedBytes: Int64
        public var removedTemporaryFiles: Int
    }

    /// Removes every blob no tagged manifest reaches, and leftovers of interrupted writes.
    ///
    /// Runs with the store locked exclusively, so no pack or import is between storing blobs and
    /// tagging them. If any tagged manifest cannot be read, nothing is removed: a blob it
    /// references could not be told apart from garbage.
    public func collectGarbage(dryRun: Bool = false) throws -> CollectionReport {
        try withExclusiveLock {
            var live: Set<Digest> = []
            let entries = try readIndex().manifests
            let referrers = entries.filter { $0.annotations?[OCIAnnotation.refName] == nil && $0.annotations?[Self.subjectAnnotation] != nil }
            for entry in entries where !referrers.contains(entry) {
                for blob in try closure(of: entry) { live.insert(blob.digest) }
            }
            // A referrer (a signature) lives while its subject does, and goes with it.
            var orphans: [Descriptor] = []
            for entry in referrers {
                if let subject = entry.annotations?[Self.subjectAnnotation].flatMap(Digest.init(parsing:)), live.contains(subject) {
                    for blob in try closure(of: entry) { live.insert(blob.digest) }
                } else {
                    orphans.append(entry)
                }
            }
            if !dryRun, !orphans.isEmpty {
                try updateIndex(holdingStoreLock: true) { index in index.manifests.removeAll { orphans.contains($0) } }
            }
            var report = CollectionReport(removedBlobs: [], freedBytes: 0, removedTemporaryFiles: 0)
            for name in FileSystem.listDirectory(blobsDirectory) {
                let path = FileSystem.join(blobsDirectory, name)
                if let digest = Digest(hex: name), live.contains(digest) { continue }
                let size = (try? FileSystem.size(of: path)) ?? 0
                if !dryRun, unlink(path) != 0 { throw StoreError.io(operation: "cannot remove", path: path, errno: errno) }
                if let digest = Digest(hex: name) { report.removedBlobs.append(digest) }
                report.freedBytes += size
            }
            for name in FileSystem.listDirectory(temporaryDirectory) {
                if !dryRun { unlink(FileSystem.join(temporaryDirectory, name)) }
                report.removedTemporaryFiles += 1
            }
            if !dryRun { FileSystem.syncDirectory(blobsDirectory) }
            return report
        }
    }
}
