import FoundationEssentials

/// OCI 1.1 referrers kept in the layout: a manifest whose `subject` is another manifest (a
/// signature, an attestation) sits in `index.json` untagged, its entry annotated with the
/// subject's digest so it is found without reading every manifest. `gc` keeps a referrer while
/// its subject is tagged, and drops it with it.
extension Store {
    /// The index annotation naming a referrer's subject.
    public static let subjectAnnotation = "dev.vessel.referrer.subject"

    /// Stores `manifest` (which must have a `subject`) and lists it as a referrer of its subject.
    @discardableResult
    public func attach(_ manifest: ImageManifest) throws -> Descriptor {
        // A writer: gc must not sweep the manifest's temporary, or its blobs before it is listed.
        try withWriterLock { try attachHoldingWriterLock(manifest) }
    }

    private func attachHoldingWriterLock(_ manifest: ImageManifest) throws -> Descriptor {
        guard let subject = manifest.subject else { throw StoreError.notFound("the subject of a referrer") }
        guard hasBlob(subject.digest) else { throw StoreError.blobMissing(subject.digest, context: "subject of a referrer") }
        for blob in [manifest.config] + manifest.layers where !hasBlob(blob.digest) {
            throw StoreError.blobMissing(blob.digest, context: "a referrer's blob")
        }
        var descriptor = try ingest(Array(CanonicalJSON.encode(manifest)), mediaType: OCIMediaType.imageManifest)
        descriptor.artifactType = manifest.artifactType
        descriptor.annotations = [Self.subjectAnnotation: subject.digest.description]
        let entry = descriptor
        try updateIndex { index in
            if !index.manifests.contains(where: { $0.digest == entry.digest && $0.annotations?[OCIAnnotation.refName] == nil }) {
                index.manifests.append(entry)
            }
        }
        return descriptor
    }

    /// The referrers of `subject`, newest last (index order), optionally of one artifact type.
    public func referrers(of subject: Digest, artifactType: String? = nil) throws -> [Descriptor] {
        try readIndex().manifests.filter { entry in
            entry.annotations?[OCIAnnotation.refName] == nil && entry.annotations?[Self.subjectAnnotation] == subject.description
                && (artifactType == nil || entry.artifactType == artifactType)
        }
    }

    /// A referrer whose one layer is a document (a signature bundle, an attestation), as OCI 1.1
    /// artifacts carry one: `document` is stored with `mediaType` and `title`, under a manifest of
    /// `artifactType` with an empty config (unless one is given), `annotations`, and `subject` as
    /// its subject.
    @discardableResult
    public func attach(
        document: [UInt8], mediaType: String, title: String, artifactType: String, annotations: [String: String], to subject: Descriptor,
        layerAnnotations: [String: String] = [:], config configBlob: (bytes: [UInt8], mediaType: String)? = nil
    ) throws -> Descriptor {
        // One writer from the document's blob to the index entry that keeps it: a gc in between
        // took the blob's temporary (seen in CI: three packs and a gc at once).
        try withWriterLock {
            let layer = try ingest(document, mediaType: mediaType, annotations: layerAnnotations.merging([OCIAnnotation.title: title]) { $1 })
            let config = try ingest(configBlob?.bytes ?? Array("{}".utf8), mediaType: configBlob?.mediaType ?? OCIMediaType.empty)
            var manifest = ImageManifest(artifactType: artifactType, config: config, layers: [layer], annotations: annotations)
            manifest.subject = Descriptor(mediaType: subject.mediaType, digest: subject.digest, size: subject.size)
            return try attachHoldingWriterLock(manifest)
        }
    }

    /// The referrers of `subject` of `artifactType` whose manifest names that subject, each with its
    /// manifest and first layer (the document), newest last.
    public func attachedDocuments(of subject: Digest, artifactType: String) throws -> [(referrer: Descriptor, manifest: ImageManifest, layer: Descriptor)] {
        var found: [(referrer: Descriptor, manifest: ImageManifest, layer: Descriptor)] = []
        for referrer in try referrers(of: subject, artifactType: artifactType) {
            let manifest = try CanonicalJSON.decode(
                ImageManifest.self, from: readBlob(referrer, context: "a referrer of \(subject.short)"), path: blobPath(referrer.digest))
            guard manifest.subject?.digest == subject, let layer = manifest.layers.first else { continue }
            found.append((referrer, manifest, layer))
        }
        return found
    }

    /// Removes referrer entries (their blobs stay until `gc`).
    public func detach(_ referrers: [Descriptor]) throws {
        let digests = Set(referrers.map(\.digest))
        try updateIndex { index in
            index.manifests.removeAll { digests.contains($0.digest) && $0.annotations?[OCIAnnotation.refName] == nil }
        }
    }
}
