import Crypto
import Foundation
public import VesselSignature
import VesselStore
import VesselTensor

/// A private key, read from a PEM file (PKCS #8, or SEC 1 for EC) and never written anywhere
/// but the file `vessel keygen` creates.
/// Swift Crypto's key types are immutable values that do not declare Sendable.
public struct SigningKey: @unchecked Sendable {
    enum Key {
        case p256(P256.Signing.PrivateKey)
        case p384(P384.Signing.PrivateKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }
    let key: Key

    init(key: Key) { self.key = key }

    public var type: KeyType {
        switch key {
        case .p256: .ecdsaP256
        case .p384: .ecdsaP384
        case .ed25519: .ed25519
        }
    }

    public static func generate(_ type: KeyType) -> SigningKey {
        switch type {
        case .ecdsaP256: SigningKey(key: .p256(P256.Signing.PrivateKey()))
        case .ecdsaP384: SigningKey(key: .p384(P384.Signing.PrivateKey()))
        case .ed25519: SigningKey(key: .ed25519(Curve25519.Signing.PrivateKey()))
        }
    }

    /// - Parameters:
    ///   - source: where the text came from, for messages (never the key itself).
    ///   - password: for an `ENCRYPTED PRIVATE KEY` (see ``EncryptedPrivateKey``).
    public init(pem text: String, source: String, password: String? = nil) throws {
        if text.contains("Proc-Type: 4,ENCRYPTED") {
            throw TrustError("\(source) is encrypted the legacy OpenSSL way; convert it (`openssl pkcs8 -topk8 -v2 aes-256-cbc -in \(source)`)")
        }
        guard var (label, der) = PEM.decode(text) else { throw TrustError("\(source) is not a PEM private key") }
        if label == "ENCRYPTED PRIVATE KEY" {
            guard let password else { throw TrustError("\(source) is encrypted; set VESSEL_KEY_PASSWORD to its password") }
            (label, der) = ("PRIVATE KEY", try EncryptedPrivateKey.decrypt(der, password: password, source: source))
        }
        switch label {
        case "EC PRIVATE KEY", "PRIVATE KEY":
            if label == "PRIVATE KEY", der.starts(with: Ed25519DER.privatePrefix), der.count == Ed25519DER.privatePrefix.count + 32 {
                key = .ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: der.suffix(32)))
            } else if let p256 = try? P256.Signing.PrivateKey(derRepresentation: der) {
                key = .p256(p256)
            } else if let p384 = try? P384.Signing.PrivateKey(derRepresentation: der) {
                key = .p384(p384)
            } else {
                throw TrustError("\(source) is not an ECDSA P-256 or P-384 or an Ed25519 private key")
            }
        default:
            throw TrustError("\(source) holds a PEM `\(label)`, not a private key")
        }
    }

    /// PKCS #8 PEM, encrypted under `password` (PBES2: PBKDF2-HMAC-SHA-256, AES-256-CBC).
    public func encryptedPEM(password: String) throws -> String {
        guard let (_, der) = PEM.decode(pem) else { throw TrustError("cannot encode the key") }
        return PEM.encode(try EncryptedPrivateKey.encrypt(der, password: password), label: "ENCRYPTED PRIVATE KEY")
    }

    /// PKCS #8 PEM.
    public var pem: String {
        switch key {
        case .p256(let key): key.pemRepresentation
        case .p384(let key): key.pemRepresentation
        case .ed25519(let key): PEM.encode(Ed25519DER.privatePrefix + Array(key.rawRepresentation), label: "PRIVATE KEY")
        }
    }

    public var publicKey: VerifyingKey {
        switch key {
        case .p256(let key): VerifyingKey(key: .p256(key.publicKey))
        case .p384(let key): VerifyingKey(key: .p384(key.publicKey))
        case .ed25519(let key): VerifyingKey(key: .ed25519(key.publicKey))
        }
    }

    /// The signature over `message`: DER ECDSA (SHA-256 on P-256, SHA-384 on P-384) or raw Ed25519.
    public func sign(_ message: [UInt8]) throws -> [UInt8] {
        switch key {
        case .p256(let key): Array(try key.signature(for: message).derRepresentation)
        case .p384(let key): Array(try key.signature(for: message).derRepresentation)
        case .ed25519(let key): Array(try key.signature(for: message))
        }
    }
}
