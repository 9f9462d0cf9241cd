#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension Store {
    /// Writes a manifest and everything it references as an OCI image-layout tar (what skopeo
    /// calls `oci-archive:`), tagged `refName` in the archive's `index.json`. The tar is built
    /// under a temporary name and renamed into place, so `path` is never half-written.
    ///
    /// For a runnable image (an image config, not an artifact), the archive also carries Docker's
    /// `manifest.json` and `io.containerd.image.name`, as `docker save` writes them since Docker 25:
    /// `docker load` of any version, `podman load` and `skopeo` (`oci-archive:` and
    /// `docker-archive:`) all read it.
    public func exportArchive(_ descriptor: Descriptor, refName: String, to path: String, progress: ProgressBar = .silent()) throws {
        let blobs = try closure(of: descriptor).sorted { $0.digest < $1.digest }
        var entry = descriptor
        entry.annotations = [OCIAnnotation.refName: refName]
        var extraFiles: [(String, [UInt8])] = []
        if descriptor.mediaType == OCIMediaType.imageManifest || descriptor.mediaType == OCIMediaType.dockerManifest {
            let manifest = try CanonicalJSON.decode(ImageManifest.self, from: readBlob(descriptor, context: "manifest"), path: blobPath(descriptor.digest))
            if manifest.config.mediaType == OCIMediaType.imageConfig || manifest.config.mediaType == "application/vnd.docker.container.image.v1+json" {
                entry.annotations?["io.containerd.image.name"] = refName
                struct DockerEntry: Encodable {
                    var Config: String
                    var RepoTags: [String]
                    var Layers: [String]
                }
                let docker = [
                    DockerEntry(
                        Config: "blobs/sha256/\(manifest.config.digest.hex)", RepoTags: [refName],
                        Layers: manifest.layers.map { "blobs/sha256/\($0.digest.hex)" })
                ]
                extraFiles.append(("manifest.json", try Array(CanonicalJSON.encode(docker))))
            }
        }
        let index = try Array(CanonicalJSON.encode(ImageIndex(manifests: [entry])))
        let layout = try Array(CanonicalJSON.encode(OCILayoutMarker(imageLayoutVersion: Self.layoutVersion)))

        let directory = FileSystem.dirname(path)
        let temporary = FileSystem.join(directory, ".\((FileSystem.basename(path))).tmp-\(getpid())")
        let fd = try FileSystem.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
        var closed = false
        defer {
            if !closed { close(fd) }
            if FileSystem.exists(temporary) { unlink(temporary) }
        }
        var tar = TarWriter { try FileSystem.writeAll(fd, $0, path: temporary) }
        try tar.writeHeader(path: "blobs", kind: .directory)
        try tar.writeHeader(path: "blobs/sha256", kind: .directory)
        for blob in blobs {
            try tar.writeHeader(path: "blobs/sha256/\(blob.digest.hex)", kind: .file(size: blob.size, executable: false))
            try readBlobVerifying(blob, context: blob.annotations?[OCIAnnotation.title] ?? blob.mediaType) { chunk in
                try tar.writeContent(chunk)
                progress.advance(by: chunk.count)
            }
            try tar.finishEntry()
        }
        for (name, bytes) in [("index.json", index)] + extraFiles + [("oci-layout", layout)] {
            try tar.writeHeader(path: name, kind: .file(size: Int64(bytes.count), executable: false))
            try bytes.withUnsafeBytes { try tar.writeContent($0) }
            try tar.finishEntry()
        }
        try tar.finish()
        try FileSystem.check(fsync(fd), "cannot fsync", temporary)
        close(fd)
        closed = true
        try FileSystem.check(rename(temporary, path), "cannot rename into", path)
        FileSystem.syncDirectory(directory)
        progress.finish()
    }

    /// Reads an OCI image-layout tar into the store.
    ///
    /// Every blob is verified against the digest in its name while it is stored; entries that
    /// would land outside the layout (absolute paths, `..`), links and devices are refused. Tags
    /// are added only once every manifest's blobs are present, so a bad archive changes nothing
    /// visible. A ref name that is only a tag (as other tools write) takes its name from `name`.
    ///
    /// - Parameter rename: tag to give the archive's single manifest instead of its own ref name.
    public func importArchive(from path: String, as rename: Reference? = nil, progress: ProgressBar = .silent()) throws -> [TaggedManifest] {
        try withWriterLock {
            let fd = try FileSystem.open(path, O_RDONLY)
            defer { close(fd) }
            let reader = TarReader(fd: fd, path: path)
            var indexBytes: [UInt8]?
            var sawLayout = false
            while let entry = try reader.next() {
                let normalized: String
                switch SafePath.normalize(entry.path) {
                case .success(let value): normalized = value
                case .failure(let problem):
                    throw StoreError.unsafeArchiveEntry(archive: path, entry: entry.path, reason: problem.description)
                }
                switch entry.kind {
                case .directory:
                    continue
                case .symlink, .hardlink:
                    throw StoreError.unsafeArchiveEntry(archive: path, entry: entry.path, reason: "is a link; an OCI layout holds only files")
                case .other(let type):
                    throw StoreError.unsafeArchiveEntry(archive: path, entry: entry.path, reason: "has unsupported type `\(Character(UnicodeScalar(type)))`")
                case .file:
                    break
                }
                if normalized == "index.json" {
                    indexBytes = try reader.readAll()
                } else if normalized == "oci-layout" {
                    let marker = try CanonicalJSON.decode(OCILayoutMarker.self, from: Data(reader.readAll()), path: "\(path):oci-layout")
                    guard marker.imageLayoutVersion.hasPrefix("1.") else {
                        throw StoreError.unsupportedLayout(path: path, version: marker.imageLayoutVersion)
                    }
                    sawLayout = true
                } else if normalized.hasPrefix("blobs/sha256/") {
                    guard let digest = Digest(hex: String(normalized.dropFirst("blobs/sha256/".count))) else {
                        throw StoreError.invalidArchive(archive: path, reason: "`\(entry.path)` is not named by a sha256 digest")
                    }
                    let ingest = try beginIngest()
                    do {
                        try reader.readContent { chunk in
                            try ingest.append(chunk)
                            progress.advance(by: chunk.count)
                        }
                        try ingest.commit(expecting: digest)
                    } catch StoreError.digestMismatch(let expected, let actual, _) {
                        throw StoreError.digestMismatch(expected: expected, actual: actual, context: "\(entry.path) in \(path)")
                    } catch {
                        ingest.abort()
                        throw error
                    }
                }
                // Anything else inside the layout is not OCI's and is skipped.
            }
            progress.finish()
            guard sawLayout else { throw StoreError.invalidArchive(archive: path, reason: "no `oci-layout` file") }
            guard let indexBytes else { throw StoreError.invalidArchive(archive: path, reason: "no `index.json`") }
            let index = try CanonicalJSON.decode(ImageIndex.self, from: Data(indexBytes), path: "\(path):index.json")
            guard !index.manifests.isEmpty else { throw StoreError.invalidArchive(archive: path, reason: "`index.json` lists no manifest") }
            if rename != nil, index.manifests.count > 1 {
                throw StoreError.invalidArchive(archive: path, reason: "it holds \(index.manifests.count) manifests; `--as` needs exactly one")
            }
            var tags: [(Descriptor, Reference)] = []
            for manifest in index.manifests {
                for blob in try closure(of: manifest) where !hasBlob(blob.digest) {
                    throw StoreError.blobMissing(blob.digest, context: "referenced by the archive's manifest, but not in \(path)")
                }
                let reference = try Self.reference(for: manifest, rename: rename, archive: path)
                tags.append((manifest, reference))
            }
            return try tags.map { descriptor, reference in
                var clean = descriptor
                clean.annotations?[OCIAnnotation.refName] = nil
                if clean.annotations?.isEmpty == true { clean.annotations = nil }
                try tag(clean, as: reference)
                return TaggedManifest(refName: reference.refName!, descriptor: clean)
            }
        }
    }

    private static func reference(for manifest: Descriptor, rename: Reference?, archive: String) throws -> Reference {
        let refName = manifest.annotations?[OCIAnnotation.refName]
        if let rename {
            if rename.tag != nil, rename.digest == nil { return rename }
            // `--as NAME` keeps the archive's tag, when it has one.
            let tag = refName.flatMap { $0.contains(":") ? (try? Reference(parsing: $0))?.tag : $0 } ?? Reference.defaultTag
            guard Reference.isValid(tag: tag) else { throw Reference.ParseError.invalidTag(tag) }
            return Reference(name: rename.name, tag: tag)
        }
        guard let refName else {
            throw StoreError.invalidArchive(archive: archive, reason: "manifest \(manifest.digest) has no name; pass `--as NAME:TAG`")
        }
        guard refName.contains(":"), let reference = try? Reference(parsing: refName), reference.digest == nil else {
            throw StoreError.invalidArchive(archive: archive, reason: "its manifest is tagged `\(refName)` without a name; pass `--as NAME[:TAG]`")
        }
        return reference
    }
}
