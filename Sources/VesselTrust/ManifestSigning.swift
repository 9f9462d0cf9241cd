import Crypto
import Foundation
public import VesselStore
public import VesselSignature
import VesselTensor

/// Signatures over a manifest's digest — an image's or an artifact's — in the form cosign 3
/// writes with its Sigstore bundles (`cosign sign --new-bundle-format`), which is what
/// `cosign verify` and sigstore's policy-controller look for: an in-toto statement whose one
/// subject is the manifest's digest, predicate type `https://sigstore.dev/cosign/sign/v1`, empty
/// predicate; signed as DSSE in a Sigstore bundle v0.3; attached as an OCI 1.1 referrer of
/// artifact type `application/vnd.dev.sigstore.bundle.v0.3+json` with cosign's annotations
/// (`dev.sigstore.bundle.content: dsse-envelope`, `dev.sigstore.bundle.predicateType`).
///
/// Beside it goes cosign's older, tag-form signature, which sigstore's policy-controller still
/// needs for a key (it takes bundles only from keyless signers): a "simple signing" payload naming
/// the manifest digest, signed as is, in a one-layer manifest whose layer carries the signature
/// in `dev.cosignproject.cosign/signature`; pushed under the tag `sha256-<hex>.sig` as well as
/// listed as a referrer.
///
/// It proves who vouched for these exact bytes; the Model Signing bundle (`ArtifactSigning`)
/// proves the same for the files a model hub or `model_signing` sees.
public enum ManifestSigning {
    public static let predicateType = "https://sigstore.dev/cosign/sign/v1"
    public static let predicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
    public static let contentAnnotation = "dev.sigstore.bundle.content"

    /// The tag-form signature's layer media type, and the artifact type Vessel lists it under.
    public static let simpleSigningMediaType = OCIMediaType.cosignSimpleSigning
    public static let simpleSigningSignatureAnnotation = "dev.cosignproject.cosign/signature"

    /// cosign's simple-signing payload for `digest`; `reference` is informational (cosign checks
    /// only the digest claim).
    public static func simpleSigningPayload(of digest: VesselStore.Digest, reference: String) -> [UInt8] {
        let name = String(decoding: (try? JSONEncoder().encode(reference)) ?? Data("\"\"".utf8), as: UTF8.self)
        return Array(
            #"{"critical":{"identity":{"docker-reference":\#(name)},"image":{"docker-manifest-digest":"\#(digest)"},"type":"cosign container image signature"},"optional":null}"#
                .utf8)
    }

    /// The statement cosign signs for `digest`: keys in cosign's (protojson) order.
    public static func statement(of digest: VesselStore.Digest) -> [UInt8] {
        Array(
            #"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"\#(digest.hex)"}}],"predicateType":"\#(predicateType)","predicate":{}}"#
                .utf8)
    }

    /// Signs `subject`'s digest both ways (bundle and tag form) and attaches both to it,
    /// replacing earlier ones by the same key. Returns the bundle and the bundle's referrer.
    public static func sign(
        _ subject: Descriptor, reference: String, store: Store, key: SigningKey
    ) throws -> (
        bundle: SigstoreBundle, referrer: Descriptor
    ) {
        let hint = key.publicKey.hint
        let earlier =
            try bundles(of: subject, store: store).filter { SigstoreBundle.keyHint($0.bytes) == hint }
            .map(\.descriptor)
            // The tag-form manifest is rebuilt with the other keys' layers kept.
            + (try store.referrers(of: subject.digest, artifactType: simpleSigningMediaType))
        let bundle = try SigstoreBundle.signing(statement: statement(of: subject.digest), with: key)
        let referrer = try store.attach(
            document: try bundle.encoded(), mediaType: SigstoreBundle.mediaTypeV03, title: "cosign.sig", artifactType: SigstoreBundle.mediaTypeV03,
            annotations: [
                contentAnnotation: "dsse-envelope", predicateTypeAnnotation: predicateType, ArtifactSigning.formatAnnotation: ArtifactSigning.cosignFormat
            ],
            to: subject)
        let tagForm = try attachSimpleSignature(subject, reference: reference, store: store, key: key)
        try store.detach(earlier.filter { $0.digest != referrer.digest && $0.digest != tagForm.digest })
        return (bundle, referrer)
    }

    /// On a tag-form signature's layer: the signing key's hint (the payload names none).
    static let keyHintAnnotation = "dev.vessel.signature.key-hint"

    /// One tag-form manifest per subject, as cosign keeps one per `.sig` tag: every other key's
    /// signature layer, then this key's.
    private static func attachSimpleSignature(_ subject: Descriptor, reference: String, store: Store, key: SigningKey) throws -> Descriptor {
        let hint = key.publicKey.hint
        let payload = simpleSigningPayload(of: subject.digest, reference: reference)
        let signature = Base64.encode(try key.sign(payload))
        return try store.withWriterLock {
            let kept = try simpleSignatures(of: subject, store: store).filter { $0.keyHint != hint }.map(\.layer)
            let layer = try store.ingest(
                payload, mediaType: simpleSigningMediaType,
                annotations: [simpleSigningSignatureAnnotation: signature, keyHintAnnotation: hint, OCIAnnotation.title: "cosign.sig"])
            let layers = kept + [layer]
            // An image config over the payloads, as cosign's signature images have.
            let diffIDs = layers.map { "\"\($0.digest)\"" }.joined(separator: ",")
            let history = layers.map { _ in #"{"created":"0001-01-01T00:00:00Z"}"# }.joined(separator: ",")
            let config = try store.ingest(
                Array(
                    #"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[\#(history)],"os":"","rootfs":{"type":"layers","diff_ids":[\#(diffIDs)]}}"#
                        .utf8), mediaType: OCIMediaType.imageConfig)
            var manifest = ImageManifest(artifactType: simpleSigningMediaType, config: config, layers: layers, annotations: nil)
            manifest.subject = Descriptor(mediaType: subject.mediaType, digest: subject.digest, size: subject.size)
            return try store.attach(manifest)
        }
    }

    /// The tag-form signature layers attached to `subject`: the manifest holding each, the
    /// layer, payload, signature and key hint.
    public static func simpleSignatures(
        of subject: Descriptor, store: Store
    ) throws -> [(
        descriptor: Descriptor, layer: Descriptor, payload: [UInt8], signature: String, keyHint: String?
    )] {
        var found: [(descriptor: Descriptor, layer: Descriptor, payload: [UInt8], signature: String, keyHint: String?)] = []
        for (referrer, manifest, _) in try store.attachedDocuments(of: subject.digest, artifactType: simpleSigningMediaType) {
            for layer in manifest.layers where layer.mediaType == simpleSigningMediaType {
                let payload = Array(try store.readBlob(layer, limit: 1 << 20, context: "signature of \(subject.digest.short)"))
                found.append((referrer, layer, payload, layer.annotations?[simpleSigningSignatureAnnotation] ?? "", layer.annotations?[keyHintAnnotation]))
            }
        }
        return found
    }

    /// Checks a tag-form signature: the signature over the payload with `key`, then the
    /// payload's digest claim.
    public static func verifySimpleSigning(payload: [UInt8], signature: String, source: String, digest: VesselStore.Digest, key: VerifyingKey) throws {
        guard let bytes = Base64.decode(Array(signature.utf8)[...]), key.isValid(bytes, for: payload) else {
            throw TrustError("\(source): the signature does not verify with this key")
        }
        struct Payload: Decodable {
            struct Critical: Decodable {
                struct Image: Decodable {
                    var digest: String
                    enum CodingKeys: String, CodingKey { case digest = "docker-manifest-digest" }
                }
                var image: Image
                var type: String
            }
            var critical: Critical
        }
        guard let claim = try? JSONDecoder().decode(Payload.self, from: Data(payload)), claim.critical.type == "cosign container image signature" else {
            throw TrustError("\(source) is not a cosign simple-signing payload")
        }
        guard claim.critical.image.digest == digest.description else {
            throw TrustError("\(source) signs \(claim.critical.image.digest), not \(digest)")
        }
    }

    /// The cosign-form bundles attached to `subject`, newest last.
    public static func bundles(of subject: Descriptor, store: Store) throws -> [(descriptor: Descriptor, bytes: [UInt8])] {
        try store.attachedDocuments(of: subject.digest, artifactType: SigstoreBundle.mediaTypeV03).compactMap { referrer, manifest, layer in
            guard manifest.annotations?[predicateTypeAnnotation] == predicateType else { return nil }
            return (referrer, Array(try store.readBlob(layer, limit: 1 << 20, context: "signature bundle of \(subject.digest.short)")))
        }
    }

    /// Checks one bundle: the signature with `key`, then that its statement is cosign's about
    /// exactly `digest`.
    public static func verify(_ bytes: [UInt8], source: String, digest: VesselStore.Digest, key: VerifyingKey) throws {
        let payload = try SigstoreBundle.parse(bytes, source: source).verifiedStatement(with: key, source: source)
        struct Statement: Decodable {
            struct Subject: Decodable { var digest: [String: String] }
            var _type: String
            var subject: [Subject]
            var predicateType: String
        }
        let statement: Statement
        do { statement = try JSONDecoder().decode(Statement.self, from: Data(payload)) } catch {
            throw TrustError("\(source): the signed statement is not an in-toto statement: \(error)")
        }
        guard statement.predicateType == predicateType else {
            throw TrustError("\(source) signs a `\(statement.predicateType)` statement, not cosign's signature of a manifest")
        }
        guard statement.subject.contains(where: { $0.digest["sha256"] == digest.hex }) else {
            let named = statement.subject.compactMap { $0.digest["sha256"] }.map { "sha256:" + $0.prefix(12) + "…" }.joined(separator: ", ")
            throw TrustError("\(source) signs \(named.isEmpty ? "no digest" : named), not \(digest)")
        }
    }

    /// Checks the signatures of `subject`'s digest, bundles and tag form: at least one must
    /// verify with `key`, and none signed by that key may fail. Returns how many verified.
    @discardableResult
    public static func verifyAttached(_ subject: Descriptor, name: String, store: Store, key: VerifyingKey) throws -> Int {
        var verified = 0
        var failures: [String] = []
        func check(_ source: String, hint: String?, _ body: () throws -> Void) {
            guard key.mayHaveSigned(keyHint: hint) else { return }
            do {
                try body()
                verified += 1
            } catch {
                failures.append("\(error)")
            }
        }
        for bundle in try bundles(of: subject, store: store) {
            let source = "signature \(bundle.descriptor.digest.short)"
            check(source, hint: SigstoreBundle.keyHint(bundle.bytes)) {
                try verify(bundle.bytes, source: source, digest: subject.digest, key: key)
            }
        }
        for signature in try simpleSignatures(of: subject, store: store) {
            let source = "tag-form signature \(signature.descriptor.digest.short)"
            check(source, hint: signature.keyHint) {
                try verifySimpleSigning(payload: signature.payload, signature: signature.signature, source: source, digest: subject.digest, key: key)
            }
        }
        if let failure = failures.first { throw TrustError(failure) }
        guard verified > 0 else { throw TrustError("\(name) has no signature of its manifest by this key (vessel sign attaches one)") }
        return verified
    }
}
