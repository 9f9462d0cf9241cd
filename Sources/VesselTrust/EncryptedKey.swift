import Crypto
import VesselSignature
import SwiftASN1
import _CryptoExtras

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A PKCS #8 `ENCRYPTED PRIVATE KEY` (RFC 5958 EncryptedPrivateKeyInfo) under PBES2 (RFC 8018):
/// PBKDF2 with HMAC-SHA-1, -256, -384 or -512, then AES-128, -192 or -256 in CBC mode. That is
/// what `openssl genpkey -aes256`, `openssl pkcs8 -topk8 -v2 aes-256-cbc` and most tools write.
/// Keys vessel writes use PBKDF2-HMAC-SHA-256 with 600,000 rounds (OWASP's figure for it) and
/// AES-256-CBC, a fresh salt and IV each time.
enum EncryptedPrivateKey {
    static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
    static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
    static let scrypt: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 11591, 4, 11]
    static let hmacSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]
    static let hmacSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
    /// PBKDF2's pseudo-random functions: HMAC with SHA-1, -256, -384, -512.
    static let prfs: [ASN1ObjectIdentifier: KDF.Insecure.PBKDF2.HashFunction] = [
        hmacSHA1: .insecureSHA1, hmacSHA256: .sha256, [1, 2, 840, 113_549, 2, 10]: .sha384, [1, 2, 840, 113_549, 2, 11]: .sha512
    ]
    static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    /// AES-CBC key lengths by cipher.
    static let ciphers: [ASN1ObjectIdentifier: Int] = [[2, 16, 840, 1, 101, 3, 4, 1, 2]: 16, [2, 16, 840, 1, 101, 3, 4, 1, 22]: 24, aes256CBC: 32]
    static let rounds = 600_000
    /// More rounds than this in a file is a key made to stall whoever opens it.
    static let maximumRounds = 100_000_000

    /// The PKCS #8 `PRIVATE KEY` DER inside; `source` names the file in messages.
    static func decrypt(_ der: [UInt8], password: String, source: String) throws -> [UInt8] {
        let parameters: Parameters
        let encrypted: ASN1OctetString
        do {
            (parameters, encrypted) = try DER.sequence(try DER.parse(der), identifier: .sequence) { nodes in
                let algorithm = try AlgorithmIdentifier(derEncoded: &nodes)
                let data = try ASN1OctetString(derEncoded: &nodes)
                return (try Parameters(algorithm, source: source), data)
            }
        } catch let error as TrustError {
            throw error
        } catch {
            throw TrustError("\(source) is not a well-formed encrypted PKCS #8 key: \(error)")
        }
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: parameters.salt, using: parameters.prf, outputByteCount: parameters.keyLength,
            unsafeUncheckedRounds: parameters.rounds)
        let plain: Data
        do {
            plain = try AES._CBC.decrypt(Array(encrypted.bytes), using: key, iv: try AES._CBC.IV(ivBytes: parameters.iv))
        } catch {
            throw TrustError("cannot decrypt \(source): wrong password (VESSEL_KEY_PASSWORD)")
        }
        // A wrong password can leave valid padding by chance (about 1 in 256); the DER inside is
        // then garbage.
        guard let node = try? DER.parse(Array(plain)), node.identifier == .sequence else {
            throw TrustError("cannot decrypt \(source): wrong password (VESSEL_KEY_PASSWORD)")
        }
        return Array(plain)
    }

    /// `plain` (PKCS #8 DER) encrypted under `password`, as DER.
    static func encrypt(_ plain: [UInt8], password: String) throws -> [UInt8] {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let iv = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, unsafeUncheckedRounds: rounds)
        let encrypted = try AES._CBC.encrypt(plain, using: key, iv: try AES._CBC.IV(ivBytes: iv))
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { info in
            try info.appendConstructedNode(identifier: .sequence) { algorithm in
                try algorithm.serialize(pbes2)
                try algorithm.appendConstructedNode(identifier: .sequence) { parameters in
                    try parameters.appendConstructedNode(identifier: .sequence) { kdf in
                        try kdf.serialize(pbkdf2)
                        try kdf.appendConstructedNode(identifier: .sequence) { pbkdf2Parameters in
                            try pbkdf2Parameters.serialize(ASN1OctetString(contentBytes: ArraySlice(salt)))
                            try pbkdf2Parameters.serialize(rounds)
                            try pbkdf2Parameters.appendConstructedNode(identifier: .sequence) { prf in
                                try prf.serialize(hmacSHA256)
                                try prf.serialize(ASN1Null())
                            }
                        }
                    }
                    try parameters.appendConstructedNode(identifier: .sequence) { cipher in
                        try cipher.serialize(aes256CBC)
                        try cipher.serialize(ASN1OctetString(contentBytes: ArraySlice(iv)))
                    }
                }
            }
            try info.serialize(ASN1OctetString(contentBytes: ArraySlice(encrypted)))
        }
        return serializer.serializedBytes
    }

    /// An AlgorithmIdentifier: an OID and its parameters, if any.
    struct AlgorithmIdentifier {
        var oid: ASN1ObjectIdentifier
        var parameters: ASN1Node?

        init(derEncoded nodes: inout ASN1NodeCollection.Iterator) throws {
            guard let node = nodes.next() else { throw ASN1Error.invalidASN1Object(reason: "an algorithm identifier is missing") }
            (oid, parameters) = try DER.sequence(node, identifier: .sequence) { inner in
                (try ASN1ObjectIdentifier(derEncoded: &inner), inner.next())
            }
        }
    }

    /// What PBES2's parameters say: how to derive the key, and the cipher's IV.
    struct Parameters {
        var salt: [UInt8]
        var rounds: Int
        var prf: KDF.Insecure.PBKDF2.HashFunction
        var keyLength: Int
        var iv: [UInt8]

        init(_ algorithm: AlgorithmIdentifier, source: String) throws {
            guard algorithm.oid == EncryptedPrivateKey.pbes2, let node = algorithm.parameters else {
                throw TrustError("\(source) is encrypted with \(algorithm.oid), not PBES2; re-encrypt it (`openssl pkcs8 -topk8 -v2 aes-256-cbc`)")
            }
            var kdfNode: ASN1Node?
            var cipher: AlgorithmIdentifier?
            try DER.sequence(node, identifier: .sequence) { nodes in
                let kdf = try AlgorithmIdentifier(derEncoded: &nodes)
                guard kdf.oid == EncryptedPrivateKey.pbkdf2 else {
                    let name = kdf.oid == EncryptedPrivateKey.scrypt ? "scrypt" : "\(kdf.oid)"
                    throw TrustError(
                        "\(source) derives its key with \(name), which vessel does not read; re-encrypt it with PBKDF2 (`openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
                    )
                }
                kdfNode = kdf.parameters
                cipher = try AlgorithmIdentifier(derEncoded: &nodes)
            }
            guard let cipher, let length = EncryptedPrivateKey.ciphers[cipher.oid], let ivNode = cipher.parameters else {
                throw TrustError(
                    "\(source) is encrypted with \(cipher.map { "\($0.oid)" } ?? "no cipher"), not AES-CBC; re-encrypt it (`openssl pkcs8 -topk8 -v2 aes-256-cbc`)"
                )
            }
            keyLength = length
            iv = Array(try ASN1OctetString(derEncoded: ivNode).bytes)
            guard let kdfNode else { throw TrustError("\(source): PBKDF2 has no parameters") }
            var prfID = EncryptedPrivateKey.hmacSHA1  // the default when absent
            (salt, rounds) = try DER.sequence(kdfNode, identifier: .sequence) { nodes in
                let salt = Array(try ASN1OctetString(derEncoded: &nodes).bytes)
                let rounds = try Int(derEncoded: &nodes)
                // keyLength (INTEGER) is optional before the PRF; the cipher fixes it anyway.
                var rest = nodes
                if let next = rest.next(), next.identifier == .integer { nodes = rest }
                if nodes.peekIsSequence { prfID = try AlgorithmIdentifier(derEncoded: &nodes).oid }
                return (salt, rounds)
            }
            guard let prf = EncryptedPrivateKey.prfs[prfID] else { throw TrustError("\(source) uses PBKDF2 with \(prfID), which vessel does not read") }
            guard (1...EncryptedPrivateKey.maximumRounds).contains(rounds) else {
                throw TrustError("\(source) asks for \(rounds) PBKDF2 rounds; vessel reads 1 to \(EncryptedPrivateKey.maximumRounds)")
            }
            self.prf = prf
        }
    }
}

extension ASN1NodeCollection.Iterator {
    /// Whether the next node is a SEQUENCE, without taking it.
    fileprivate var peekIsSequence: Bool {
        var copy = self
        return copy.next()?.identifier == .sequence
    }
}
