import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore
import VesselTrust

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-hash every blob of an artifact; fail naming the first that does not match. With --key, first check its signature.",
        discussion: """
            With --key PUB, a signature attached by `vessel sign` (or the bundle given with --signature, such as one         `model_signing sign key` wrote over the unpacked files) must verify with that key and list exactly the artifact's files.
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
                guard descriptor.artifactType == ModelPack.artifactType else {
                    throw ValidationError("\(reference) is not a model artifact; only those are signed")
                }
                let publicKey = try loadVerifyingKey(key)
                let artifact = try Artifact.load(reference, from: store, verifyLayers: false)  // the signature check re-hashes the files' layers
                let verified: String
                if let signature {
                    guard let data = FileManager.default.contents(atPath: signature) else { throw ValidationError("cannot read \(signature)") }
                    verified = try ArtifactSigning.verifyAny([(signature, Array(data))], key: publicKey, artifact: artifact, store: store)
                } else {
                    verified = try ArtifactSigning.verifyAttached(artifact, store: store, key: publicKey)
                }
                print("signature verified: \(verified), key \(publicKey.hint.prefix(12))…, \(artifact.files.count + 1) files")
                for predicateType in try ArtifactSigning.verifyAttestations(artifact, store: store, key: publicKey) {
                    print("signed attestation verified: \(predicateType)")
                }
                checked = Set(artifact.files.map(\.descriptor.digest))
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

struct VerifyFailure: Error, CustomStringConvertible {
    var description: String
}
