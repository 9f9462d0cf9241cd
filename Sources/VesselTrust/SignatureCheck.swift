import VesselArtifact
public import VesselStore
public import VesselSignature

/// What `vessel verify --key` and `vessel pull --verify-key` check: every signature by the key
/// attached to an image or a model artifact.
public enum SignatureCheck {
    /// Checks the signatures attached to `descriptor` by `key`: a signature of the manifest
    /// digest (cosign's form) must name this manifest; one of the files must list exactly an
    /// artifact's files; signed attestations must hold. An image needs a manifest signature; an
    /// artifact either (the files one unless only the manifest was signed by this key). Returns
    /// a line per check, and the blobs whose digests a check already re-hashed.
    public static func attached(
        to descriptor: Descriptor, as reference: Reference, store: Store, key: VerifyingKey
    ) throws -> (
        report: [String], checked: Set<Digest>
    ) {
        var report: [String] = []
        let isArtifact = descriptor.artifactType == ModelPack.artifactType
        func byThisKey(_ bundles: [(descriptor: Descriptor, bytes: [UInt8])]) -> Bool {
            bundles.contains { key.mayHaveSigned(keyHint: SigstoreBundle.keyHint($0.bytes)) }
        }
        let manifestSigned = byThisKey(try ManifestSigning.bundles(of: descriptor, store: store))
        if !isArtifact || manifestSigned {
            let count = try ManifestSigning.verifyAttached(descriptor, name: reference.description, store: store, key: key)
            report.append(
                "signature verified: the manifest \(descriptor.digest) (cosign, \(count) signature\(count == 1 ? "" : "s")), key \(key.hint.prefix(12))…")
        }
        guard isArtifact else {
            for predicateType in try ArtifactSigning.verifyAttestations(
                of: descriptor, named: ArtifactSigning.imageSubjectName(descriptor), label: reference.description, store: store, key: key)
            {
                report.append("signed attestation verified: \(predicateType)")
            }
            return (report, [])
        }
        // The files signature's check re-hashes every file's layer.
        let artifact = try Artifact.load(descriptor: descriptor, as: reference, from: store, verifyLayers: false)
        var checked: Set<Digest> = []
        let filesSigned = byThisKey(try ArtifactSigning.attachedBundles(of: artifact, store: store))
        if !manifestSigned || filesSigned {
            let verified = try ArtifactSigning.verifyAttached(artifact, store: store, key: key)
            report.append("signature verified: \(verified), key \(key.hint.prefix(12))…, \(artifact.files.count + 1) files")
            checked = Set(artifact.files.map(\.descriptor.digest))
        }
        for predicateType in try ArtifactSigning.verifyAttestations(artifact, store: store, key: key) {
            report.append("signed attestation verified: \(predicateType)")
        }
        return (report, checked)
    }
}
