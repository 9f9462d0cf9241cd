import Testing
import VesselSignature

/// What checking a signature rests on, without a private key in sight: the DSSE encoding, the
/// statement comparison, and public keys read from PEM.
@Suite("DSSE, Model Signing statements and public keys")
struct SignatureTests {
    @Test("DSSE's pre-authentication encoding is the spec's, byte for byte")
    func pae() {
        // The DSSE v1 protocol document's example: type "http://example.com/HelloWorld", body "hello world".
        let encoded = DSSE.pae(type: "http://example.com/HelloWorld", payload: Array("hello world".utf8))
        #expect(String(decoding: encoded, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
        // Lengths are bytes, not characters.
        #expect(String(decoding: DSSE.pae(type: "t", payload: Array("é".utf8)), as: UTF8.self) == "DSSEv1 1 t 2 é")
    }

    @Test("a statement says which file differs from the artifact, and how")
    func mismatch() {
        let a = ModelSigningStatement(modelName: "m", resources: [.init(name: "a", sha256: [1]), .init(name: "b", sha256: [2])])
        #expect(a.mismatch(with: a) == nil)
        #expect(a.mismatch(with: .init(modelName: "m", resources: [.init(name: "a", sha256: [1])])) == "`b` is signed but not in the artifact")
        #expect(a.mismatch(with: .init(modelName: "m", resources: a.resources + [.init(name: "c", sha256: [3])])) == "`c` is in the artifact but not signed")
        #expect(
            a.mismatch(with: .init(modelName: "m", resources: [.init(name: "a", sha256: [1]), .init(name: "b", sha256: [7])]))
                == "`b` does not have the signed digest")
    }

    @Test("a public key is read from its PEM, and anything else is refused naming the file")
    func publicKeys() throws {
        // An Ed25519 key (RFC 8410's example public key).
        let pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"
        let key = try VerifyingKey(pem: pem, source: "k.pub")
        #expect(key.type == .ed25519)
        #expect(key.pem == pem, "written back as read")
        #expect(key.hint.count == 64)
        for (text, message) in [
            ("not a key", "k.pub is not a PEM public key"),
            (
                "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n",
                "k.pub is not a PEM public key"
            ),
            ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "k.pub is not an ECDSA P-256 or P-384 or an Ed25519 public key")
        ] {
            #expect(throws: TrustError.self) { try VerifyingKey(pem: text, source: "k.pub") }
            do { _ = try VerifyingKey(pem: text, source: "k.pub") } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }
}
