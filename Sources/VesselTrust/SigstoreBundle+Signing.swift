@_exported public import VesselSignature
import VesselTensor

extension SigstoreBundle {
    /// `statement` signed with `key` into a bundle.
    public static func signing(statement: [UInt8], with key: SigningKey) throws -> SigstoreBundle {
        let signature = try key.sign(DSSE.pae(type: DSSE.inTotoPayloadType, payload: statement))
        return SigstoreBundle(
            mediaType: mediaTypeV03,
            verificationMaterial: VerificationMaterial(publicKey: PublicKeyIdentifier(hint: key.publicKey.hint), tlogEntries: []),
            dsseEnvelope: Envelope(
                payload: Base64.encode(statement), payloadType: DSSE.inTotoPayloadType,
                signatures: [Signature(sig: Base64.encode(signature), keyid: "")]))
    }
}
