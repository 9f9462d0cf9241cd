import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore
import VesselTrust

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-hash every blob of an artifact or image; fail naming the first that does not match. With --key, first check its signatures.",
        discussion: """
            With --key PUB, the signatures `vessel sign` attached (or the bundle given with --signature, such as one \
            `model_signing sign key` wrote over the unpacked files) must verify with that key: a signature of the manifest digest \
            (cosign's form) must name this manifest, one of the files must list exactly the artifact's files, and every signature \
            by that key must hold. An image needs a manifest signature; an artifact either.
            """
    )

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Option(help: ArgumentHelp("A public key (PEM) the artifact must be signed with.", valueName: "pub"))
    var key: String?

    @Option(help: ArgumentHelp("A Sigstore bundle file to check instead of the signatures attached in the store (needs --key).", valueName: "file"))
    var signature: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let (store, reference, descriptor) = try store.resolve(reference)
            if signature != nil, key == nil { throw ValidationError("--signature needs --key, the public key to check it with") }
            var checked: Set<Digest> = []
            if let key {
                let publicKey = try loadVerifyingKey(key)
                checked = try checkSignatures(publicKey, reference: reference, descriptor: descriptor, store: store)
            }
            let blobs = try store.verify(descriptor, skipping: checked) { blob in
                progressBar(label: blob.annotations?[OCIAnnotation.title] ?? blob.digest.short, total: blob.size)
            }
            // A model artifact is also loaded, which checks its structure beyond the digests.
            if descriptor.artifactType == ModelPack.artifactType {
                _ = try Artifact.load(reference, from: store, verifyLayers: false)
            }
            let total = blobs.reduce(Int64(0)) { $0 + $1.size }
            print("verified \(reference): \(blobs.count) blobs, \(ProgressBar.bytes(total)), all digests match")
        }
    }
}

extension Verify {
    /// Checks the signatures by `key`; returns the blobs whose digests that already checked.
    func checkSignatures(_ key: VerifyingKey, reference: Reference, descriptor: Descriptor, store: Store) throws -> Set<Digest> {
        let isArtifact = descriptor.artifactType == ModelPack.artifactType
        if let signature {
            guard let data = FileManager.default.contents(atPath: signature) else { throw ValidationError("cannot read \(signature)") }
            let bytes = Array(data)
            if let statement = try? SigstoreBundle.parse(bytes, source: signature).verifiedStatement(with: key, source: signature),
                String(decoding: statement, as: UTF8.self).contains(ManifestSigning.predicateType)
            {
                try ManifestSigning.verify(bytes, source: signature, digest: descriptor.digest, key: key)
                print("signature verified: \(signature) signs the manifest \(descriptor.digest), key \(key.hint.prefix(12))…")
                return []
            }
            guard isArtifact else { throw ValidationError("\(signature) does not sign \(reference)'s manifest (an image has no files signature)") }
            let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
            let verified = try ArtifactSigning.verifyAny([(signature, bytes)], key: key, artifact: artifact, store: store)
            print("signature verified: \(verified), key \(key.hint.prefix(12))…, \(artifact.files.count + 1) files")
            return Set(artifact.files.map(\.descriptor.digest))
        }
        let result = try SignatureCheck.attached(to: descriptor, as: reference, store: store, key: key)
        for line in result.report { print(line) }
        return result.checked
    }
}

struct VerifyFailure: Error, CustomStringConvertible {
    var description: String
}
