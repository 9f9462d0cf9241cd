import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselStore
import VesselTensor

/// DSSE (Dead Simple Signing Envelope) v1: the signature covers the pre-authentication
/// encoding `DSSEv1 LEN(type) type LEN(body) body`, never a re-encoding of the parsed payload.
public enum DSSE {
    public static let inTotoPayloadType = "application/vnd.in-toto+json"

    public static func pae(type: String, payload: [UInt8]) -> [UInt8] {
        Array("DSSEv1 \(type.utf8.count) \(type) \(payload.count) ".utf8) + payload
    }
}

/// A Sigstore bundle (v0.3, JSON) carrying a DSSE envelope and, for a key signature, the
/// public key's hint — the shape `model_signing sign key` writes and `cosign` 3 reads.
public struct SigstoreBundle: Codable, Sendable {
    public static let mediaTypeV03 = OCIMediaType.sigstoreBundle

    public struct PublicKeyIdentifier: Codable, Sendable {
        public var hint: String?
        package init(hint: String?) { self.hint = hint }
    }
    public struct VerificationMaterial: Codable, Sendable {
        public var publicKey: PublicKeyIdentifier?
        public var tlogEntries: [JSONAny]?
        package init(publicKey: PublicKeyIdentifier?, tlogEntries: [JSONAny]?) {
            self.publicKey = publicKey
            self.tlogEntries = tlogEntries
        }
    }
    public struct Signature: Codable, Sendable {
        public var sig: String
        public var keyid: String?
        package init(sig: String, keyid: String?) {
            self.sig = sig
            self.keyid = keyid
        }
    }
    public struct Envelope: Codable, Sendable {
        public var payload: String
        public var payloadType: String
        public var signatures: [Signature]
        package init(payload: String, payloadType: String, signatures: [Signature]) {
            self.payload = payload
            self.payloadType = payloadType
            self.signatures = signatures
        }
    }

    public var mediaType: String
    public var verificationMaterial: VerificationMaterial
    public var dsseEnvelope: Envelope?

    package init(mediaType: String, verificationMaterial: VerificationMaterial, dsseEnvelope: Envelope?) {
        self.mediaType = mediaType
        self.verificationMaterial = verificationMaterial
        self.dsseEnvelope = dsseEnvelope
    }

    /// Any JSON value, kept opaque (transparency-log entries this build does not check).
    public struct JSONAny: Codable, Sendable {
        public init(from decoder: any Decoder) throws {}
        public func encode(to encoder: any Encoder) throws { var container = encoder.singleValueContainer(); try container.encodeNil() }
    }

    public static func parse(_ bytes: [UInt8], source: String) throws -> SigstoreBundle {
        let bundle: SigstoreBundle
        do { bundle = try JSONDecoder().decode(SigstoreBundle.self, from: Data(bytes)) } catch {
            throw TrustError("\(source) is not a Sigstore bundle: \(error)")
        }
        guard bundle.mediaType.hasPrefix("application/vnd.dev.sigstore.bundle") else {
            throw TrustError("\(source) has media type `\(bundle.mediaType)`, not a Sigstore bundle's")
        }
        return bundle
    }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(self))
    }

    /// The hint of the key that signed it, if it names one.
    public var keyHint: String? { verificationMaterial.publicKey?.hint.flatMap { $0.isEmpty ? nil : $0 } }

    /// The key hint of the bundle in `bytes`; nil when it names none or does not parse.
    public static func keyHint(_ bytes: [UInt8]) -> String? { (try? parse(bytes, source: ""))?.keyHint }

    /// The in-toto statement, once the signature over it checks out with `key`.
    public func verifiedStatement(with key: VerifyingKey, source: String) throws -> [UInt8] {
        guard let envelope = dsseEnvelope else { throw TrustError("\(source) carries no DSSE envelope (a message signature is not supported)") }
        guard envelope.payloadType == DSSE.inTotoPayloadType else {
            throw TrustError("\(source) signs a `\(envelope.payloadType)` payload, not an in-toto statement")
        }
        if let hint = keyHint, !key.mayHaveSigned(keyHint: hint) {
            throw TrustError("\(source) was signed with another key (its key hint \(hint.prefix(12))… is not this key's \(key.hint.prefix(12))…)")
        }
        guard let payload = Base64.decode(Array(envelope.payload.utf8)[...]) else { throw TrustError("\(source): the envelope's payload is not base64") }
        let message = DSSE.pae(type: envelope.payloadType, payload: payload)
        let valid = envelope.signatures.contains { signature in
            Base64.decode(Array(signature.sig.utf8)[...]).map { key.isValid($0, for: message) } ?? false
        }
        guard valid else { throw TrustError("\(source): the signature does not verify with this key") }
        return payload
    }
}

/// The OpenSSF Model Signing statement (predicate `https://model_signing/signature/v1.0`): every
/// file of the model with its SHA-256, sorted by path; the subject's digest is the SHA-256 of
/// those digests' bytes in that order. `model_signing verify key` checks a directory against it.
public struct ModelSigningStatement: Sendable, Equatable {
    public static let predicateType = "https://model_signing/signature/v1.0"

    public struct Resource: Sendable, Equatable {
        public var name: String
        public var sha256: [UInt8]
        public init(name: String, sha256: [UInt8]) {
            self.name = name
            self.sha256 = sha256
        }
    }

    public var modelName: String
    public var resources: [Resource]

    public init(modelName: String, resources: [Resource]) {
        self.modelName = modelName
        // Sorted by the bytes of the path, as Python sorts str (by code point).
        self.resources = resources.sorted { Array($0.name.unicodeScalars.map(\.value)).lexicographicallyPrecedes(Array($1.name.unicodeScalars.map(\.value))) }
    }

    public var rootDigest: [UInt8] {
        var hasher = SHA256()
        for resource in resources { hasher.update(data: resource.sha256) }
        return Array(hasher.finalize())
    }

    public func encoded() throws -> [UInt8] {
        struct Subject: Encodable { var name: String; var digest: [String: String] }
        struct Resource: Encodable { var name: String; var algorithm: String; var digest: String }
        struct Serialization: Encodable {
            var method = "files"
            var hash_type = "sha256"
            var allow_symlinks = false
            var ignore_paths: [String] = []
        }
        struct Predicate: Encodable { var serialization: Serialization; var resources: [Resource] }
        struct Statement: Encodable {
            var _type = "https://in-toto.io/Statement/v1"
            var subject: [Subject]
            var predicateType: String
            var predicate: Predicate
        }
        let body = Statement(
            subject: [Subject(name: modelName, digest: ["sha256": Digest(bytes: rootDigest).hex])], predicateType: Self.predicateType,
            predicate: Predicate(
                serialization: Serialization(),
                resources: resources.map { Resource(name: $0.name, algorithm: "sha256", digest: Digest(bytes: $0.sha256).hex) }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(body))
    }

    /// Reads a statement; its subject digest must be what its resources hash to.
    public static func parse(_ bytes: [UInt8], source: String) throws -> ModelSigningStatement {
        struct Subject: Decodable { var name: String?; var digest: [String: String] }
        struct Resource: Decodable { var name: String; var algorithm: String; var digest: String }
        struct Predicate: Decodable { var resources: [Resource] }
        struct Statement: Decodable {
            var _type: String
            var subject: [Subject]
            var predicateType: String
            var predicate: Predicate
        }
        let statement: Statement
        do { statement = try JSONDecoder().decode(Statement.self, from: Data(bytes)) } catch {
            throw TrustError("\(source): the signed statement is not a Model Signing statement: \(error)")
        }
        guard statement.predicateType == predicateType else {
            throw TrustError("\(source) signs a `\(statement.predicateType)` statement, not Model Signing's \(predicateType)")
        }
        guard statement.subject.count == 1, let rootHex = statement.subject[0].digest["sha256"] else {
            throw TrustError("\(source): the statement must have one subject with a sha256 digest")
        }
        var resources: [ModelSigningStatement.Resource] = []
        for resource in statement.predicate.resources {
            guard resource.algorithm == "sha256", resource.digest.utf8.count == 64, let digest = unhex(resource.digest) else {
                throw TrustError("\(source): resource `\(resource.name)` has a \(resource.algorithm) digest; only sha256 is supported")
            }
            resources.append(.init(name: resource.name, sha256: digest))
        }
        let parsed = ModelSigningStatement(modelName: statement.subject[0].name ?? "", resources: resources)
        guard Digest(bytes: parsed.rootDigest).hex == rootHex else {
            throw TrustError("\(source): the statement's subject digest is not what its resources hash to")
        }
        return parsed
    }

    package static func unhex(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            case 0x41...0x46: c - 0x41 + 10
            default: nil
            }
        }
        while let high = iterator.next() {
            guard let low = iterator.next(), let h = nibble(high), let l = nibble(low) else { return nil }
            out.append(h << 4 | l)
        }
        return out
    }

    /// What differs from `actual` (the files as they are), or nil when they are the same.
    public func mismatch(with actual: ModelSigningStatement) -> String? {
        let signed = Dictionary(resources.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let present = Dictionary(actual.resources.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        for name in signed.keys.sorted() where present[name] == nil { return "`\(name)` is signed but not in the artifact" }
        for name in present.keys.sorted() where signed[name] == nil { return "`\(name)` is in the artifact but not signed" }
        for name in signed.keys.sorted() where signed[name] != present[name] { return "`\(name)` does not have the signed digest" }
        return nil
    }
}
