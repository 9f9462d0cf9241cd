import Crypto
import Foundation
public import VesselArtifact
import VesselManifest
public import VesselStore

/// Signatures over a model artifact's files in the Model Signing format, kept beside it in the
/// store as OCI 1.1 referrers: a manifest of artifact type `application/vnd.dev.sigstore.bundle.v0.3+json`
/// whose one layer is the bundle and whose `subject` is the artifact's manifest.
public enum ArtifactSigning {
    public static let artifactType = SigstoreBundle.mediaTypeV03

    /// The statement of the files `vessel unpack` writes for `artifact`, each hashed from its
    /// layer (every layer checked against its digest on the way).
    public static func statement(of artifact: Artifact, store: Store) throws -> ModelSigningStatement {
        var resources: [ModelSigningStatement.Resource] = []
        try Unpacker(store: store).forEachFile(artifact) { path, read in
            var hasher = SHA256()
            try read { hasher.update(bufferPointer: $0) }
            resources.append(.init(name: path, sha256: Array(hasher.finalize())))
        }
        return ModelSigningStatement(modelName: artifact.manifest.name, resources: resources)
    }

    /// Signs `artifact`'s files and attaches the bundle to it. Returns the bundle and the
    /// referrer's descriptor.
    public static func sign(_ artifact: Artifact, store: Store, key: SigningKey) throws -> (bundle: SigstoreBundle, referrer: Descriptor) {
        let bundle = try SigstoreBundle.signing(statement: try statement(of: artifact, store: store).encoded(), with: key)
        let bytes = try bundle.encoded()
        let layer = try store.ingest(bytes, mediaType: artifactType, annotations: [OCIAnnotation.title: "model.sig"])
        let config = try store.ingest(Array("{}".utf8), mediaType: "application/vnd.oci.empty.v1+json")
        var manifest = ImageManifest(
            artifactType: artifactType, config: config, layers: [layer],
            annotations: ["dev.vessel.signature.format": "model-signing/v1.0"])
        manifest.subject = Descriptor(mediaType: artifact.descriptor.mediaType, digest: artifact.descriptor.digest, size: artifact.descriptor.size)
        return (bundle, try store.attach(manifest))
    }

    /// The bundles attached to `artifact`, newest last.
    public static func attachedBundles(of artifact: Artifact, store: Store) throws -> [(descriptor: Descriptor, bytes: [UInt8])] {
        var found: [(Descriptor, [UInt8])] = []
        for referrer in try store.referrers(of: artifact.descriptor.digest, artifactType: artifactType) {
            let manifest = try CanonicalJSON.decode(
                ImageManifest.self, from: store.readBlob(referrer, context: "signature of \(artifact.reference)"),
                path: store.blobPath(referrer.digest))
            guard manifest.subject?.digest == artifact.descriptor.digest, let layer = manifest.layers.first else { continue }
            found.append((referrer, Array(try store.readBlob(layer, limit: 64 << 20, context: "signature bundle of \(artifact.reference)"))))
        }
        return found
    }

    /// Checks `bundle` with `key` against the artifact's files as stored: the signature, then
    /// every file's digest, none missing and none extra.
    /// `actual`: the artifact's statement when the caller has it (several bundles, one pass).
    public static func verify(
        _ bundle: SigstoreBundle, source: String, key: VerifyingKey, artifact: Artifact, store: Store,
        actual: ModelSigningStatement? = nil
    ) throws {
        let signed = try ModelSigningStatement.parse(try bundle.verifiedStatement(with: key, source: source), source: source)
        if let difference = signed.mismatch(with: try actual ?? statement(of: artifact, store: store)) {
            throw TrustError("\(source) does not match \(artifact.reference): \(difference)")
        }
    }

    /// The first of `candidates` (a label and the bundle's bytes) that verifies; else an error
    /// listing why each failed.
    @discardableResult
    public static func verifyAny(_ candidates: [(source: String, bytes: [UInt8])], key: VerifyingKey, artifact: Artifact, store: Store) throws -> String {
        var failures: [String] = []
        var actual: ModelSigningStatement?
        for (source, bytes) in candidates {
            do {
                let bundle = try SigstoreBundle.parse(bytes, source: source)
                // The signature first: the files are hashed once, and only for a bundle this key signed.
                _ = try bundle.verifiedStatement(with: key, source: source)
                if actual == nil { actual = try statement(of: artifact, store: store) }
                try verify(bundle, source: source, key: key, artifact: artifact, store: store, actual: actual)
                return source
            } catch {
                failures.append("\(error)")
            }
        }
        throw TrustError("no signature of \(artifact.reference) verifies with this key: " + failures.joined(separator: "; "))
    }

    /// Verifies the signatures attached to `artifact` in the store: one must verify with `key`.
    @discardableResult
    public static func verifyAttached(_ artifact: Artifact, store: Store, key: VerifyingKey) throws -> String {
        let candidates = try attachedBundles(of: artifact, store: store).map { (source: "signature \($0.descriptor.digest.short)", bytes: $0.bytes) }
        guard !candidates.isEmpty else { throw TrustError("\(artifact.reference) has no signature (vessel sign attaches one)") }
        return try verifyAny(candidates, key: key, artifact: artifact, store: store)
    }
}
