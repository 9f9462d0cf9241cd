import Foundation
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
public import VesselStore
#if canImport(Glibc)
import Glibc
#endif

/// Pushes a manifest and everything it references from the store to a registry.
///
/// Per blob: skipped when the registry has it (HEAD); mounted from another repository of the same
/// registry that is known to hold it (pushed or pulled there before, or `--mount-from`); else
/// uploaded in `chunkSize` PATCHes with `Content-Range`, streamed from the file. After each chunk
/// the upload's location is saved, so a push that is interrupted resumes where the registry's
/// upload stands (when the registry still accepts the session; otherwise that blob starts over).
/// The manifest goes last, so the tag never points at missing blobs.
public struct Pusher: Sendable {
    public let store: Store
    public let client: RegistryClient
    public var chunkSize: Int64
    public var progress: @Sendable (String, Int64) -> ProgressBar
    public var log: @Sendable (String) -> Void

    public init(
        store: Store, client: RegistryClient, chunkSize: Int64 = 64 << 20,
        progress: @escaping @Sendable (String, Int64) -> ProgressBar = { _, _ in .silent() },
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.store = store
        self.client = client
        self.chunkSize = max(1 << 20, chunkSize)
        self.progress = progress
        self.log = log
    }

    public struct Report: Sendable {
        public var manifest: Descriptor
        public var uploaded: [Descriptor] = []
        public var existing: [Descriptor] = []
        public var mounted: [Descriptor] = []
        /// Blobs whose upload continued an interrupted one, with the offset it resumed at.
        public var resumed: [(Descriptor, Int64)] = []
        public var bytesSent: Int64 = 0
        /// Referrers (signatures) pushed with the manifest.
        public var referrers: [Descriptor] = []
        /// Whether they went to the tag-schema fallback (`sha256-<hex>`): the registry does not
        /// answer the referrers API.
        public var referrersByTag = false
    }

    /// Pushes `descriptor` (a manifest or index in the store) to `target`.
    public func push(_ descriptor: Descriptor, to target: RegistryReference, mountFrom: [String] = []) async throws -> Report {
        var report = Report(manifest: descriptor)
        try await pushManifest(descriptor, to: target, reference: target.tag ?? descriptor.digest.description, mountFrom: mountFrom, report: &report)
        try await pushReferrers(of: descriptor, to: target, mountFrom: mountFrom, report: &report)
        return report
    }

    /// The store's referrers of `descriptor` (its signatures), after it: by digest, found through
    /// the registry's referrers API when it answers one (it says so with `OCI-Subject` on the
    /// PUT), else listed in the index tagged `sha256-<hex>` (OCI distribution 1.1's fallback).
    /// cosign's tag-form signature manifest also goes under the tag `sha256-<hex>.sig`, where
    /// cosign and sigstore's policy-controller look for it.
    private func pushReferrers(of descriptor: Descriptor, to target: RegistryReference, mountFrom: [String], report: inout Report) async throws {
        let referrers = try store.referrers(of: descriptor.digest)
        guard !referrers.isEmpty else { return }
        var indexed = true
        for referrer in referrers {
            var entry = referrer
            entry.annotations = nil
            let supported = try await pushManifest(entry, to: target, reference: referrer.digest.description, mountFrom: mountFrom, report: &report)
            indexed = indexed && supported
            report.referrers.append(referrer)
            if referrer.artifactType == OCIMediaType.cosignSimpleSigning {
                try await pushManifest(
                    entry, to: target, reference: OCIMediaType.cosignSignatureTag(of: descriptor.digest), mountFrom: mountFrom, report: &report)
            }
        }
        guard !indexed else { return }
        report.referrersByTag = true
        let tag = "sha256-" + descriptor.digest.hex
        let scope = RegistryClient.pushScope(target.repository)
        let existing = try await client.send(
            .GET, "/v2/\(target.repository)/manifests/\(tag)", headers: [("Accept", OCIMediaType.imageIndex)],
            scopes: [scope], expect: [200, 404])
        var index = ImageIndex(manifests: [])
        if existing.status.code == 200,
            let decoded = try? JSONDecoder().decode(ImageIndex.self, from: Data(Array(buffer: try await existing.body.collect(upTo: 4 << 20))))
        {
            index = decoded
        }
        for referrer in referrers where !index.manifests.contains(where: { $0.digest == referrer.digest }) {
            index.manifests.append(Descriptor(mediaType: referrer.mediaType, digest: referrer.digest, size: referrer.size, artifactType: referrer.artifactType))
        }
        let body = ByteBuffer(bytes: Array(try CanonicalJSON.encode(index)))
        let response = try await client.send(
            .PUT, "/v2/\(target.repository)/manifests/\(tag)", headers: [("Content-Type", OCIMediaType.imageIndex)],
            scopes: [scope], expect: [200, 201], body: { .bytes(body) })
        _ = try? await response.body.collect(upTo: 1 << 20)
    }

    /// Returns whether the registry took the manifest's `subject` (the `OCI-Subject` header).
    @discardableResult
    private func pushManifest(
        _ descriptor: Descriptor, to target: RegistryReference, reference: String, mountFrom: [String], report: inout Report
    ) async throws -> Bool {
        let bytes = try store.readBlob(descriptor, context: "manifest \(descriptor.digest)")
        let scope = RegistryClient.pushScope(target.repository)
        if descriptor.mediaType == OCIMediaType.imageIndex || descriptor.mediaType == OCIMediaType.dockerManifestList {
            let index = try CanonicalJSON.decode(ImageIndex.self, from: bytes, path: store.blobPath(descriptor.digest))
            for child in index.manifests {
                try await pushManifest(child, to: target, reference: child.digest.description, mountFrom: mountFrom, report: &report)
            }
        } else {
            let manifest = try CanonicalJSON.decode(ImageManifest.self, from: bytes, path: store.blobPath(descriptor.digest))
            for blob in manifest.layers + [manifest.config] {
                try await pushBlob(blob, to: target, mountFrom: mountFrom, report: &report)
            }
        }
        let body = ByteBuffer(bytes: bytes)
        let response = try await client.send(
            .PUT, "/v2/\(target.repository)/manifests/\(reference)",
            headers: [("Content-Type", descriptor.mediaType)], scopes: [scope], expect: [200, 201],
            body: { .bytes(body) })
        if let echoed = response.headers.first(name: "Docker-Content-Digest"), echoed != descriptor.digest.description {
            throw RegistryClient.RegistryError(
                method: "PUT", url: client.url("/v2/\(target.repository)/manifests/\(reference)"), status: 201,
                message: "the registry stored the manifest as \(echoed), not \(descriptor.digest)")
        }
        _ = try? await response.body.collect(upTo: 1 << 20)
        return response.headers.first(name: "OCI-Subject") != nil
    }

    /// Whether the registry has the blob in `repository`.
    func exists(_ digest: Digest, in repository: String) async throws -> Bool {
        let response = try await client.send(.HEAD, "/v2/\(repository)/blobs/\(digest)", scopes: [RegistryClient.pushScope(repository)], expect: [200, 404])
        return response.status.code == 200
    }

    private func pushBlob(_ blob: Descriptor, to target: RegistryReference, mountFrom: [String], report: inout Report) async throws {
        let label = blob.annotations?[OCIAnnotation.title] ?? blob.digest.short
        let repository = target.repository
        let scope = RegistryClient.pushScope(repository)
        if try await exists(blob.digest, in: repository) {
            report.existing.append(blob)
            log("\(label): already there (\(blob.digest.short))")
            return
        }
        let sources = RegistryCache.repositories(holding: blob.digest, registry: client.registry, store: store).filter { $0 != repository } + mountFrom
        var location: String?
        for source in Set(sources).sorted() where source != repository {
            let response = try await client.send(
                .POST, "/v2/\(repository)/blobs/uploads/?mount=\(blob.digest)&from=\(source)",
                headers: [("Content-Length", "0")], scopes: [scope, RegistryClient.pullScope(source)], expect: [201, 202])
            if response.status.code == 201 {
                report.mounted.append(blob)
                log("\(label): mounted from \(source)")
                RegistryCache.record(blob.digest, registry: client.registry, repository: repository, store: store)
                return
            }
            location = response.headers.first(name: "Location")
            break
        }

        let path = store.blobPath(blob.digest)
        guard FileSystem.exists(path) else { throw StoreError.blobMissing(blob.digest, context: label) }
        let state = UploadState(store: store, registry: client.registry, repository: repository, digest: blob.digest)
        var offset: Int64 = 0
        if location == nil, let saved = state.load() {
            // Where does the interrupted upload stand?
            if let response = try? await client.send(.GET, saved, scopes: [scope], expect: [204]),
                let range = response.headers.first(name: "Range"), let end = range.split(separator: "-").last.flatMap({ Int64($0) })
            {
                location = response.headers.first(name: "Location") ?? saved
                offset = end + 1
                if offset > blob.size { offset = 0; location = nil }
            }
            if location != nil, offset > 0 {
                report.resumed.append((blob, offset))
                log("\(label): resuming at \(ProgressBar.bytes(offset)) of \(ProgressBar.bytes(blob.size))")
            } else {
                log("\(label): the interrupted upload cannot be resumed (the registry dropped it); starting over")
                location = nil
                offset = 0
            }
        }
        if location == nil {
            let response = try await client.send(.POST, "/v2/\(repository)/blobs/uploads/", headers: [("Content-Length", "0")], scopes: [scope], expect: [202])
            guard let value = response.headers.first(name: "Location") else {
                throw RegistryClient.RegistryError(
                    method: "POST", url: client.url("/v2/\(repository)/blobs/uploads/"), status: 202, message: "no Location for the upload")
            }
            location = value
        }
        guard var uploadURL = location.map({ client.url($0) }) else { return }

        let bar = progress(label, blob.size)
        bar.advance(by: Int(offset))
        let startOffset = offset
        if offset == 0, blob.size <= chunkSize {
            // Small: one PUT with the content (monolithic upload).
            let body = FileBody(path: path, offset: 0, length: blob.size, progress: bar)
            let response = try await client.send(
                .PUT, Self.appending(digest: blob.digest, to: uploadURL),
                headers: [("Content-Type", "application/octet-stream"), ("Content-Length", String(blob.size))],
                scopes: [scope], expect: [201], body: { body.requestBody })
            _ = try? await response.body.collect(upTo: 1 << 16)
        } else {
            while offset < blob.size {
                let length = min(chunkSize, blob.size - offset)
                let body = FileBody(path: path, offset: offset, length: length, progress: bar)
                let response = try await client.send(
                    .PATCH, uploadURL,
                    headers: [
                        ("Content-Type", "application/octet-stream"), ("Content-Range", "\(offset)-\(offset + length - 1)"), ("Content-Length", String(length))
                    ], scopes: [scope], expect: [202], body: { body.requestBody })
                _ = try? await response.body.collect(upTo: 1 << 16)
                if let next = response.headers.first(name: "Location") { uploadURL = client.url(next) }
                offset += length
                if let range = response.headers.first(name: "Range"), let end = range.split(separator: "-").last.flatMap({ Int64($0) }), end + 1 != offset {
                    throw RegistryClient.RegistryError(
                        method: "PATCH", url: uploadURL, status: 202, message: "the registry holds \(end + 1) bytes, expected \(offset)")
                }
                state.save(location: uploadURL)
            }
            let response = try await client.send(
                .PUT, Self.appending(digest: blob.digest, to: uploadURL), headers: [("Content-Length", "0")],
                scopes: [scope], expect: [201])
            _ = try? await response.body.collect(upTo: 1 << 16)
        }
        bar.finish()
        state.remove()
        report.uploaded.append(blob)
        report.bytesSent += blob.size - startOffset
        RegistryCache.record(blob.digest, registry: client.registry, repository: repository, store: store)
        log("\(label): pushed \(ProgressBar.bytes(blob.size))")
    }

    static func appending(digest: Digest, to url: String) -> String {
        url + (url.contains("?") ? "&" : "?") + "digest=" + digest.description.replacingOccurrences(of: ":", with: "%3A")
    }
}

/// The location of an upload in progress, saved after each chunk: `tmp/upload-<hash>.json`.
struct UploadState {
    let path: String

    init(store: Store, registry: String, repository: String, digest: Digest) {
        let key = "\(registry)/\(repository)".utf8.reduce(UInt64(14695981039346656037)) { ($0 ^ UInt64($1)) &* 1099511628211 }
        path = FileSystem.join(FileSystem.join(store.root, "tmp"), "upload-\(String(key, radix: 16))-\(digest.hex).json")
    }

    func load() -> String? {
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONDecoder().decode([String: String].self, from: data)
        else { return nil }
        return object["location"]
    }

    func save(location: String) {
        guard let bytes = try? Array(CanonicalJSON.encode(["location": location])) else { return }
        try? FileSystem.writeAtomically(bytes, to: path)
    }

    func remove() { unlink(path) }
}

/// Which repositories of a registry hold a blob, as far as this store knows (it pushed or pulled
/// it there): where a push can mount from instead of uploading. `registry-cache.json`, best effort.
enum RegistryCache {
    static func path(_ store: Store) -> String { FileSystem.join(store.root, "registry-cache.json") }

    static func load(_ store: Store) -> [String: [String: [String]]] {
        guard let data = FileManager.default.contents(atPath: path(store)) else { return [:] }
        return (try? JSONDecoder().decode([String: [String: [String]]].self, from: data)) ?? [:]
    }

    static func repositories(holding digest: Digest, registry: String, store: Store) -> [String] {
        load(store)[registry]?[digest.description] ?? []
    }

    static func record(_ digest: Digest, registry: String, repository: String, store: Store) {
        var cache = load(store)
        var repositories = cache[registry]?[digest.description] ?? []
        guard !repositories.contains(repository) else { return }
        repositories.append(repository)
        cache[registry, default: [:]][digest.description] = Array(repositories.suffix(8))
        if let bytes = try? Array(CanonicalJSON.encode(cache)) { try? FileSystem.writeAtomically(bytes, to: path(store)) }
    }
}
