import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Pulls a manifest and its blobs from a registry into the store.
///
/// Everything is checked before it is stored: the manifest against the digest asked for (or the
/// registry's `Docker-Content-Digest`), each blob against its descriptor while it streams to a
/// partial file. An interrupted download stays in `tmp/partial-<digest>` and the next pull asks
/// only for the rest (`Range`). The tag is written last, so nothing half-pulled is visible.
public struct Puller: Sendable {
    public let store: Store
    public let client: RegistryClient
    public var progress: @Sendable (String, Int64) -> ProgressBar
    public var log: @Sendable (String) -> Void

    public init(
        store: Store, client: RegistryClient, progress: @escaping @Sendable (String, Int64) -> ProgressBar = { _, _ in .silent() },
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.store = store
        self.client = client
        self.progress = progress
        self.log = log
    }

    public struct Report: Sendable {
        public var manifest: Descriptor
        public var downloaded: [Descriptor] = []
        public var present: [Descriptor] = []
        public var resumed: [(Descriptor, Int64)] = []
        public var bytesReceived: Int64 = 0
        /// Referrers (signatures) pulled with the manifest.
        public var referrers: [Descriptor] = []
    }

    public enum PullError: Error, Sendable, CustomStringConvertible {
        case digestMismatch(what: String, expected: String, actual: String)
        case unsupported(String)

        public var description: String {
            switch self {
            case .digestMismatch(let what, let expected, let actual): "\(what) has digest \(actual), expected \(expected); nothing was stored"
            case .unsupported(let reason): reason
            }
        }
    }

    static let manifestTypes = [OCIMediaType.imageManifest, OCIMediaType.imageIndex, OCIMediaType.dockerManifest, OCIMediaType.dockerManifestList]

    /// Pulls `source` and tags it `local`, with the referrers of the given artifact types
    /// (signatures). `check` runs on the stored, still untagged manifest and its referrers; when
    /// it throws, the referrers are dropped and nothing is tagged.
    public func pull(
        _ source: RegistryReference, as local: Reference, referrerTypes: Set<String> = [],
        check: ((Descriptor) throws -> Void)? = nil
    ) async throws -> Report {
        let scope = RegistryClient.pullScope(source.repository)
        var (descriptor, bytes) = try await fetchManifest(source.repository, reference: source.manifestReference, expected: source.digest, scope: scope)
        if descriptor.mediaType == OCIMediaType.imageIndex || descriptor.mediaType == OCIMediaType.dockerManifestList {
            let index = try CanonicalJSON.decode(ImageIndex.self, from: Data(bytes), path: source.description)
            guard let child = Self.choose(index.manifests) else {
                throw PullError.unsupported("\(source) is an index with no manifest for linux/\(Self.architecture)")
            }
            log("index: taking \(child.digest.short) (linux/\(Self.architecture))")
            (descriptor, bytes) = try await fetchManifest(
                source.repository, reference: child.digest.description, expected: child.digest.description, scope: scope)
        }
        guard descriptor.mediaType == OCIMediaType.imageManifest || descriptor.mediaType == OCIMediaType.dockerManifest else {
            throw PullError.unsupported("\(source) has a manifest of type \(descriptor.mediaType)")
        }
        let manifest = try CanonicalJSON.decode(ImageManifest.self, from: Data(bytes), path: source.description)
        // The writer lock from the first blob to the tag: a `gc` meanwhile would see the blobs
        // as unreferenced and delete them under the manifest about to be tagged.
        return try await store.withWriterLock {
            var report = Report(manifest: descriptor)
            for blob in [manifest.config] + manifest.layers {
                try await pullBlob(blob, repository: source.repository, scope: scope, report: &report)
            }
            // The manifest last, then the tag: a reader never finds a manifest whose blobs are missing.
            let stored = try store.ingest(bytes, mediaType: descriptor.mediaType)
            guard stored.digest == descriptor.digest else {
                throw PullError.digestMismatch(what: "manifest", expected: descriptor.digest.description, actual: stored.digest.description)
            }
            var tagged = descriptor
            tagged.artifactType = manifest.artifactType
            if !referrerTypes.isEmpty {
                try await pullReferrers(of: tagged, repository: source.repository, types: referrerTypes, scope: scope, report: &report)
            }
            if let check {
                do { try check(tagged) } catch {
                    try? store.detach(report.referrers)
                    throw error
                }
            }
            try store.tag(tagged, as: local)
            report.manifest = tagged
            return report
        }
    }

    /// The referrers of `subject` of the given artifact types: from the referrers API, else from
    /// the `sha256-<hex>` index (the tag-schema fallback); each manifest checked against its
    /// digest and its `subject`, its blobs pulled, then attached in the store.
    private func pullReferrers(of subject: Descriptor, repository: String, types: Set<String>, scope: String, report: inout Report) async throws {
        var listed: [Descriptor] = []
        let api = try await client.send(
            .GET, "/v2/\(repository)/referrers/\(subject.digest)", headers: [("Accept", OCIMediaType.imageIndex)],
            scopes: [scope], expect: [200, 404, 400, 405])
        if api.status.code == 200, let index = try? JSONDecoder().decode(ImageIndex.self, from: Data(Array(buffer: try await api.body.collect(upTo: 4 << 20))))
        {
            listed = index.manifests
        } else {
            _ = try? await api.body.collect(upTo: 1 << 20)
            let tagged = try await client.send(
                .GET, "/v2/\(repository)/manifests/sha256-\(subject.digest.hex)", headers: [("Accept", OCIMediaType.imageIndex)],
                scopes: [scope], expect: [200, 404])
            let body = try await tagged.body.collect(upTo: 4 << 20)
            if tagged.status.code == 200, let index = try? JSONDecoder().decode(ImageIndex.self, from: Data(Array(buffer: body))) { listed = index.manifests }
        }
        for entry in listed where entry.artifactType.map(types.contains) ?? false {
            let (descriptor, bytes) = try await fetchManifest(repository, reference: entry.digest.description, expected: entry.digest.description, scope: scope)
            let manifest = try CanonicalJSON.decode(ImageManifest.self, from: Data(bytes), path: "\(repository)@\(entry.digest)")
            guard manifest.subject?.digest == subject.digest else { continue }
            for blob in [manifest.config] + manifest.layers {
                try await pullBlob(blob, repository: repository, scope: scope, report: &report)
            }
            let stored = try store.ingest(bytes, mediaType: descriptor.mediaType)
            guard stored.digest == descriptor.digest else {
                throw PullError.digestMismatch(what: "a referrer's manifest", expected: descriptor.digest.description, actual: stored.digest.description)
            }
            report.referrers.append(try store.attach(manifest))
        }
    }

    static var architecture: String {
        #if arch(arm64)
        "arm64"
        #else
        "amd64"
        #endif
    }

    /// The index entry for this platform, or the only entry when none names a platform.
    static func choose(_ manifests: [Descriptor]) -> Descriptor? {
        manifests.first { $0.platform?.os == "linux" && $0.platform?.architecture == architecture }
            ?? (manifests.count == 1 && manifests[0].platform == nil ? manifests[0] : nil)
    }

    private func fetchManifest(_ repository: String, reference: String, expected: String?, scope: String) async throws -> (Descriptor, [UInt8]) {
        let response = try await client.send(
            .GET, "/v2/\(repository)/manifests/\(reference)",
            headers: [("Accept", Self.manifestTypes.joined(separator: ", "))], scopes: [scope], expect: [200])
        let body = try await response.body.collect(upTo: 4 << 20)
        let bytes = Array(buffer: body)
        let digest = Digest(bytes: SHA256.hash(data: bytes)).description
        if let expected, expected != digest {
            throw PullError.digestMismatch(what: "the manifest of \(repository)@\(reference)", expected: expected, actual: digest)
        }
        if expected == nil, let echoed = response.headers.first(name: "Docker-Content-Digest"), echoed.hasPrefix("sha256:"), echoed != digest {
            throw PullError.digestMismatch(what: "the manifest of \(repository):\(reference)", expected: echoed, actual: digest)
        }
        var mediaType = response.headers.first(name: "Content-Type")?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        if !Self.manifestTypes.contains(mediaType) {
            struct Probe: Decodable { var mediaType: String? }
            mediaType = (try? JSONDecoder().decode(Probe.self, from: Data(bytes)))?.mediaType ?? OCIMediaType.imageManifest
        }
        return (Descriptor(mediaType: mediaType, digest: Digest(parsing: digest)!, size: Int64(bytes.count)), bytes)
    }

    private func pullBlob(_ blob: Descriptor, repository: String, scope: String, report: inout Report) async throws {
        let label = blob.annotations?[OCIAnnotation.title] ?? blob.digest.short
        if store.hasBlob(blob.digest) {
            report.present.append(blob)
            return
        }
        let partial = store.partialPath(for: blob.digest)
        // Hash what an earlier, interrupted pull already wrote.
        var hasher = SHA256()
        var have: Int64 = 0
        if FileSystem.exists(partial), let size = try? FileSystem.size(of: partial), size > 0, size < blob.size {
            let fd = try FileSystem.openForReading(partial)
            try FileSystem.forEachChunk(fd, path: partial) { hasher.update(bufferPointer: $0) }
            close(fd)
            have = size
        } else {
            unlink(partial)
        }
        let bar = progress(label, blob.size)
        var headers = [("Accept", "*/*")]
        if have > 0 { headers.append(("Range", "bytes=\(have)-")) }
        let response = try await client.send(.GET, "/v2/\(repository)/blobs/\(blob.digest)", headers: headers, scopes: [scope], expect: [200, 206])
        if response.status.code == 200, have > 0 {
            // The registry sent it all again: start over.
            hasher = SHA256()
            have = 0
            unlink(partial)
        }
        if have > 0 {
            report.resumed.append((blob, have))
            log("\(label): resuming at \(ProgressBar.bytes(have)) of \(ProgressBar.bytes(blob.size))")
        }
        bar.advance(by: Int(have))
        let fd = try FileSystem.open(partial, O_WRONLY | O_CREAT | O_APPEND, mode: 0o644)
        var written = have
        do {
            for try await buffer in response.body {
                try buffer.withUnsafeReadableBytes { raw in
                    written += Int64(raw.count)
                    guard written <= blob.size else {
                        throw PullError.digestMismatch(what: label, expected: "\(blob.size) bytes", actual: "more")
                    }
                    hasher.update(bufferPointer: raw)
                    try FileSystem.writeAll(fd, raw, path: partial)
                }
                bar.advance(by: buffer.readableBytes)
            }
            close(fd)
        } catch {
            close(fd)
            throw error
        }
        let digest = Digest(bytes: hasher.finalize())
        guard written == blob.size, digest == blob.digest else {
            unlink(partial)
            throw PullError.digestMismatch(what: "blob \(label) (\(written) bytes)", expected: blob.digest.description, actual: digest.description)
        }
        try store.adoptVerifiedFile(partial, as: blob.digest)
        bar.finish()
        report.downloaded.append(blob)
        report.bytesReceived += blob.size - have
        RegistryCache.record(blob.digest, registry: client.registry, repository: repository, store: store)
        log("\(label): pulled \(ProgressBar.bytes(blob.size))")
    }
}
