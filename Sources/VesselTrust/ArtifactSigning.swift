import Crypto
import Foundation
public import VesselArtifact
import VesselManifest
public import VesselStore
public import VesselSignature

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
        let referrer = try attach(bundle, to: artifact, store: store, title: "model.sig", annotations: [formatAnnotation: modelSigningFormat])
        return (bundle, referrer)
    }

    /// On a signature referrer: what its bundle signs.
    static let formatAnnotation = OCIAnnotation.signatureFormat
    /// The bundle signs the artifact's files (Model Signing).
    static let modelSigningFormat = OCIAnnotation.modelSigningFormat
    /// The bundle signs an attached document (provenance, SBOM) as an in-toto statement.
    static let attestationFormat = "in-toto"
    /// The bundle signs the manifest's digest, as cosign does (`ManifestSigning`).
    static let cosignFormat = "cosign"

    @discardableResult
    private static func attach(
        _ bundle: SigstoreBundle, to artifact: Artifact, store: Store, title: String, annotations: [String: String]
    ) throws
        -> Descriptor
    {
        try store.attach(
            document: try bundle.encoded(), mediaType: artifactType, title: title, artifactType: artifactType, annotations: annotations,
            to: artifact.descriptor)
    }

    /// Signs each document attached to `artifact` (its provenance and SBOM, `Attestations`) as an
    /// in-toto statement about the artifact in a Sigstore bundle, attached beside it: the
    /// provenance is a statement already; the SBOM becomes the predicate of one
    /// (`https://cyclonedx.org/bom`), as cosign attests SBOMs. Earlier signatures of the same
    /// documents by the same key are replaced.
    public static func signAttestations(_ artifact: Artifact, store: Store, key: SigningKey) throws -> [Attestations.Attachment.Kind] {
        try signAttestations(of: artifact.descriptor, named: artifact.manifest.name, store: store, key: key)
    }

    /// The name an image's signed statements give their subject: its digest, the one name that
    /// stays the same under every tag and registry path it is pushed and pulled as.
    public static func imageSubjectName(_ image: Descriptor) -> String { image.digest.description }

    /// The same for any manifest (an image's): `name` names the statements' subject.
    public static func signAttestations(of subject: Descriptor, named name: String, store: Store, key: SigningKey) throws -> [Attestations.Attachment.Kind] {
        var signed: [Attestations.Attachment.Kind] = []
        var attached: Set<VesselStore.Digest> = []
        let earlier = try attestationBundles(of: subject, store: store)
        for attachment in try Attestations.attached(to: subject.digest, store: store) {
            let bundle = try SigstoreBundle.signing(statement: try signedStatement(attachment, of: subject, named: name, store: store), with: key)
            attached.insert(
                try store.attach(
                    document: try bundle.encoded(), mediaType: artifactType, title: attachment.kind.rawValue + ".sig", artifactType: artifactType,
                    annotations: [formatAnnotation: attestationFormat, Attestations.predicateTypeAnnotation: attachment.kind.predicateType],
                    to: subject
                ).digest)
            signed.append(attachment.kind)
        }
        let hint = key.publicKey.hint
        // Ed25519 signs deterministically: the same document signed again is the same referrer.
        try store.detach(
            earlier.filter {
                !attached.contains($0.descriptor.digest) && SigstoreBundle.keyHint($0.bytes) == hint
            }.map(\.descriptor))
        return signed
    }

    /// Every signature bundle attached to a manifest (an artifact's or an image's), described for
    /// `vessel inspect`: what it signs and the key's hint (not checked: `vessel verify --key`
    /// checks).
    public static func signatures(of subject: Descriptor, store: Store) throws -> [(descriptor: Descriptor, detail: String)] {
        try bundles(of: subject, store: store).map { bundle in
            let hint = SigstoreBundle.keyHint(bundle.bytes)
            let what =
                switch bundle.format {
                case attestationFormat: "signs \(bundle.predicateType ?? "an attestation")"
                case cosignFormat: "signs the manifest digest (cosign)"
                default: "signs the files (Model Signing v1.0)"
                }
            return (bundle.descriptor, what + (hint.map { ", key \($0.prefix(12))…" } ?? ""))
        }
    }

    /// The bundles attached to `artifact` that sign its files (not its attestations), newest last.
    public static func attachedBundles(of artifact: Artifact, store: Store) throws -> [(descriptor: Descriptor, bytes: [UInt8])] {
        try bundles(of: artifact.descriptor, store: store).filter { $0.format != attestationFormat && $0.format != cosignFormat }.map {
            ($0.descriptor, $0.bytes)
        }
    }

    /// The bundles attached to `artifact` that sign its attestations, with the predicate type each names.
    static func attestationBundles(of subject: Descriptor, store: Store) throws -> [(descriptor: Descriptor, bytes: [UInt8], predicateType: String)] {
        try bundles(of: subject, store: store).filter { $0.format == attestationFormat }.map { ($0.descriptor, $0.bytes, $0.predicateType ?? "") }
    }

    private static func bundles(
        of subject: Descriptor, store: Store
    ) throws -> [(
        descriptor: Descriptor, bytes: [UInt8], format: String?, predicateType: String?
    )] {
        try store.attachedDocuments(of: subject.digest, artifactType: artifactType).map { referrer, manifest, layer in
            (
                referrer, Array(try store.readBlob(layer, limit: 64 << 20, context: "signature bundle of \(subject.digest.short)")),
                manifest.annotations?[formatAnnotation], manifest.annotations?[Attestations.predicateTypeAnnotation]
            )
        }
    }

    /// The in-toto statement a signature of `attachment` covers: the provenance is one already;
    /// the SBOM becomes the predicate of one about the artifact (named by its model, so it reads
    /// the same under any tag or registry path).
    private static func signedStatement(_ attachment: Attestations.Attachment, of subject: Descriptor, named name: String, store: Store) throws -> [UInt8] {
        let document = try Attestations.read(attachment, store: store)
        guard attachment.kind != .provenance else { return document }
        return try Attestations.statement(
            subjectName: name, digest: subject.digest, predicateType: attachment.kind.predicateType, predicate: document)
    }

    /// Checks every signed attestation of `artifact` with `key`: the signature, that the statement
    /// is about this artifact's manifest, and that it is the document attached beside it (when
    /// one is). Returns the predicate types verified; throws naming the first that fails. A
    /// bundle signed by another key is not this key's to judge and is skipped.
    public static func verifyAttestations(_ artifact: Artifact, store: Store, key: VerifyingKey) throws -> [String] {
        try verifyAttestations(of: artifact.descriptor, named: artifact.manifest.name, label: artifact.reference.description, store: store, key: key)
    }

    /// The same for any manifest (an image's); `label` names it in messages.
    public static func verifyAttestations(of subject: Descriptor, named name: String, label: String, store: Store, key: VerifyingKey) throws -> [String] {
        struct Statement: Decodable {
            struct Subject: Decodable { var digest: [String: String] }
            var subject: [Subject]
            var predicateType: String
        }
        // What a signature of each kind must sign: the statement of each document attached now.
        var expected: [Attestations.Attachment.Kind: [[UInt8]]] = [:]
        for attachment in try Attestations.attached(to: subject.digest, store: store) {
            expected[attachment.kind, default: []].append(try signedStatement(attachment, of: subject, named: name, store: store))
        }
        var verified: [String] = []
        for bundle in try attestationBundles(of: subject, store: store) {
            let source = "the signed attestation \(bundle.descriptor.digest.short)"
            let parsed = try SigstoreBundle.parse(bundle.bytes, source: source)
            guard key.mayHaveSigned(keyHint: parsed.keyHint) else { continue }
            let payload = try parsed.verifiedStatement(with: key, source: source)
            let statement: Statement
            do { statement = try JSONDecoder().decode(Statement.self, from: Data(payload)) } catch {
                throw TrustError("\(source) is not an in-toto statement: \(error)")
            }
            guard statement.subject.contains(where: { $0.digest["sha256"] == subject.digest.hex }) else {
                throw TrustError("\(source) is about another manifest, not \(label) (\(subject.digest))")
            }
            guard statement.predicateType == bundle.predicateType else {
                throw TrustError("\(source) signs a `\(statement.predicateType)` statement, but is labelled `\(bundle.predicateType)`")
            }
            if let kind = Attestations.Attachment.Kind.allCases.first(where: { $0.predicateType == statement.predicateType }),
                let statements = expected[kind], !statements.contains(payload)
            {
                throw TrustError("the attached \(kind.rawValue) of \(label) is not the one \(source) signs")
            }
            verified.append(statement.predicateType)
        }
        return verified
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
