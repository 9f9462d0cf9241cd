package import Crypto
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselStore
import VesselTensor

/// A failure to read, use or check a key or a signature; the message names what and where.
public struct TrustError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The key types `vessel keygen` makes and `vessel sign` signs with: ECDSA on P-256 (SHA-256)
/// or P-384 (SHA-384) — what Model Signing's key method and cosign take — and Ed25519.
public enum KeyType: String, Sendable, CaseIterable {
    case ecdsaP256 = "ecdsa-p256", ecdsaP384 = "ecdsa-p384", ed25519
}

/// PEM armour: `-----BEGIN LABEL-----`, base64 in 64-column lines, `-----END LABEL-----`.
package enum PEM {
    package static func encode(_ der: [UInt8], label: String) -> String {
        let base64 = Base64.encode(der)
        var lines: [Substring] = []
        var rest = base64[...]
        while !rest.isEmpty {
            lines.append(rest.prefix(64))
            rest = rest.dropFirst(64)
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    /// The label and DER of the first PEM block in `text`.
    package static func decode(_ text: String) -> (label: String, der: [UInt8])? {
        guard let begin = text.firstRange(of: "-----BEGIN "), let labelEnd = text[begin.upperBound...].firstRange(of: "-----") else { return nil }
        let label = String(text[begin.upperBound..<labelEnd.lowerBound])
        guard let end = text[labelEnd.upperBound...].firstRange(of: "-----END \(label)-----") else { return nil }
        let body = text[labelEnd.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        guard let der = Base64.decode(Array(body.utf8)[...]) else { return nil }
        return (label, der)
    }
}

/// Ed25519's fixed DER around its 32-byte keys (RFC 8410).
package enum Ed25519DER {
    package static let privatePrefix: [UInt8] = [0x30, 0x2E, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    package static let publicPrefix: [UInt8] = [0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x03, 0x21, 0x00]
}

/// A public key, read from a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
public struct VerifyingKey: @unchecked Sendable {
    package enum Key {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
    }
    package let key: Key

    public init(pem text: String, source: String) throws {
        guard let (label, der) = PEM.decode(text), label == "PUBLIC KEY" else { throw TrustError("\(source) is not a PEM public key (`BEGIN PUBLIC KEY`)") }
        if der.starts(with: Ed25519DER.publicPrefix), der.count == Ed25519DER.publicPrefix.count + 32 {
            key = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32)))
        } else if let p256 = try? P256.Signing.PublicKey(derRepresentation: der) {
            key = .p256(p256)
        } else if let p384 = try? P384.Signing.PublicKey(derRepresentation: der) {
            key = .p384(p384)
        } else {
            throw TrustError("\(source) is not an ECDSA P-256 or P-384 or an Ed25519 public key")
        }
    }

    package init(key: Key) { self.key = key }

    public var type: KeyType {
        switch key {
        case .p256: .ecdsaP256
        case .p384: .ecdsaP384
        case .ed25519: .ed25519
        }
    }

    package var der: [UInt8] {
        switch key {
        case .p256(let key): Array(key.derRepresentation)
        case .p384(let key): Array(key.derRepresentation)
        case .ed25519(let key): Ed25519DER.publicPrefix + Array(key.rawRepresentation)
        }
    }

    /// SubjectPublicKeyInfo PEM, in 64-column lines with a final newline (as OpenSSL and
    /// Python's `cryptography` write it: the bytes Model Signing's key hint hashes).
    public var pem: String { PEM.encode(der, label: "PUBLIC KEY") }

    /// Model Signing's key hint: the SHA-256 of the canonical PEM, hex.
    public var hint: String { Digest(bytes: SHA256.hash(data: Array(pem.utf8))).hex }

    /// Whether a signature naming `keyHint` can be this key's: one naming no key can, one naming
    /// another key is not this key's to judge.
    public func mayHaveSigned(keyHint: String?) -> Bool { keyHint.map { $0.isEmpty || $0 == hint } ?? true }

    public func isValid(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        switch key {
        case .p256(let key):
            guard let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: message)
        case .p384(let key):
            guard let parsed = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return key.isValidSignature(parsed, for: message)
        case .ed25519(let key):
            return key.isValidSignature(signature, for: message)
        }
    }
}
