import Foundation
import Testing
import VesselStore
import VesselTensor
import VesselTestSupport
@testable import VesselTrust

/// Keys, DSSE and bundles, checked against OpenSSL: keys it makes are read, signatures Vessel
/// makes verify with `openssl pkeyutl`/`dgst`, and every tampering is refused with its reason.
@Suite("keys, DSSE envelopes and Sigstore bundles")
struct TrustTests {
    @Test(
        "keys OpenSSL makes are read, and what Vessel signs verifies with OpenSSL",
        arguments: [
            ("ecdsa-p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
            ("ecdsa-p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
            ("ed25519", ["-algorithm", "ed25519"])
        ])
    func openSSLInterop(type: String, options: [String]) throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { TestSupport.remove(directory) }
        let openssl = try TestSupport.which("openssl")
        #expect(try TestSupport.run(openssl, ["genpkey"] + options + ["-out", directory + "/key.pem"]).status == 0)
        #expect(try TestSupport.run(openssl, ["pkey", "-in", directory + "/key.pem", "-pubout", "-out", directory + "/pub.pem"]).status == 0)
        let key = try SigningKey(pem: String(contentsOfFile: directory + "/key.pem", encoding: .utf8), source: "key.pem")
        #expect(key.type.rawValue == type)
        let openSSLPublic = try String(contentsOfFile: directory + "/pub.pem", encoding: .utf8)
        // The public key Vessel derives is OpenSSL's, to the byte (Model Signing's key hint hashes it).
        #expect(key.publicKey.pem == openSSLPublic)
        // Vessel's PEM of the private key reads back in OpenSSL.
        try TestSupport.write(key.pem, to: directory + "/again.pem")
        #expect(try TestSupport.run(openssl, ["pkey", "-in", directory + "/again.pem", "-noout"]).status == 0)

        let message = Array("DSSEv1 28 application/vnd.in-toto+json 2 {}".utf8)
        try Data(message).write(to: URL(fileURLWithPath: directory + "/message"))
        try Data(key.sign(message)).write(to: URL(fileURLWithPath: directory + "/signature"))
        let arguments =
            type == "ed25519"
            ? ["pkeyutl", "-verify", "-pubin", "-inkey", directory + "/pub.pem", "-rawin", "-in", directory + "/message", "-sigfile", directory + "/signature"]
            : [
                "dgst", type == "ecdsa-p256" ? "-sha256" : "-sha384", "-verify", directory + "/pub.pem", "-signature", directory + "/signature",
                directory + "/message"
            ]
        let verified = try TestSupport.run(openssl, arguments)
        #expect(verified.status == 0, "\(verified.standardOutput)\(verified.standardError)")

        // And the other way: OpenSSL's signature verifies with Vessel's reader of its public key.
        let signArguments =
            type == "ed25519"
            ? ["pkeyutl", "-sign", "-inkey", directory + "/key.pem", "-rawin", "-in", directory + "/message", "-out", directory + "/theirs"]
            : ["dgst", type == "ecdsa-p256" ? "-sha256" : "-sha384", "-sign", directory + "/key.pem", "-out", directory + "/theirs", directory + "/message"]
        #expect(try TestSupport.run(openssl, signArguments).status == 0)
        let theirs = try Array(Data(contentsOf: URL(fileURLWithPath: directory + "/theirs")))
        let publicKey = try VerifyingKey(pem: openSSLPublic, source: "pub.pem")
        #expect(publicKey.isValid(theirs, for: message))
        #expect(!publicKey.isValid(theirs, for: message + [0]))
    }

    @Test(
        "encrypted PKCS #8 keys: what OpenSSL encrypts (each PBKDF2 hash and AES size) opens with the password; what Vessel encrypts opens in OpenSSL; a wrong or missing password, scrypt and the legacy format are refused by name",
        arguments: [
            ("ecdsa-p256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256"]),
            ("ecdsa-p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-aes128"]),
            ("ed25519", ["-algorithm", "ed25519", "-aes-192-cbc"])
        ])
    func encryptedKeys(type: String, options: [String]) throws {
        let directory = try TestSupport.makeTemporaryDirectory()
        defer { TestSupport.remove(directory) }
        let openssl = try TestSupport.which("openssl")
        let password = "correct horse ☃ battery"
        let made = try TestSupport.run(openssl, ["genpkey"] + options + ["-pass", "pass:" + password, "-out", directory + "/key.pem"])
        #expect(made.status == 0, "\(made.standardError)")
        #expect(
            try TestSupport.run(openssl, ["pkey", "-in", directory + "/key.pem", "-passin", "pass:" + password, "-pubout", "-out", directory + "/pub.pem"])
                .status == 0)
        let pem = try String(contentsOfFile: directory + "/key.pem", encoding: .utf8)
        #expect(pem.hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        let key = try SigningKey(pem: pem, source: "key.pem", password: password)
        #expect(key.type.rawValue == type)
        #expect(key.publicKey.pem == (try String(contentsOfFile: directory + "/pub.pem", encoding: .utf8)))

        // PBKDF2 with HMAC-SHA-1 (the default when a file names no PRF) and with SHA-512.
        for prf in ["hmacWithSHA1", "hmacWithSHA512"] {
            let converted = try TestSupport.run(
                openssl,
                [
                    "pkcs8", "-topk8", "-in", directory + "/key.pem", "-passin", "pass:" + password, "-v2", "aes-256-cbc", "-v2prf", prf, "-iter", "1000",
                    "-passout", "pass:" + password, "-out", directory + "/\(prf).pem"
                ])
            #expect(converted.status == 0, "\(converted.standardError)")
            let again = try SigningKey(pem: String(contentsOfFile: directory + "/\(prf).pem", encoding: .utf8), source: "\(prf).pem", password: password)
            #expect(again.publicKey.pem == key.publicKey.pem, "\(prf)")
        }

        // Vessel's encrypted PEM opens in OpenSSL with the password, and is the same key.
        try TestSupport.write(try key.encryptedPEM(password: password), to: directory + "/ours.pem")
        let opened = try TestSupport.run(openssl, ["pkey", "-in", directory + "/ours.pem", "-passin", "pass:" + password, "-pubout"])
        #expect(opened.status == 0 && opened.standardOutput == key.publicKey.pem, "\(opened.standardError)")
        #expect(try TestSupport.run(openssl, ["pkey", "-in", directory + "/ours.pem", "-passin", "pass:wrong", "-noout"]).status != 0)

        func refusal(_ text: String, _ password: String?) -> String {
            do {
                _ = try SigningKey(pem: text, source: "k.pem", password: password)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal(pem, nil) == "k.pem is encrypted; set VESSEL_KEY_PASSWORD to its password")
        #expect(refusal(pem, "wrong") == "cannot decrypt k.pem: wrong password (VESSEL_KEY_PASSWORD)")
        #expect(!refusal(pem, "wrong").contains(password))
        let scrypt = try TestSupport.run(
            openssl,
            [
                "pkcs8", "-topk8", "-in", directory + "/key.pem", "-passin", "pass:" + password, "-scrypt", "-passout", "pass:" + password, "-out",
                directory + "/scrypt.pem"
            ])
        #expect(scrypt.status == 0, "\(scrypt.standardError)")
        #expect(refusal(try String(contentsOfFile: directory + "/scrypt.pem", encoding: .utf8), password).contains("derives its key with scrypt"))
        if type != "ed25519" {
            let legacy = try TestSupport.run(
                openssl,
                [
                    "pkey", "-in", directory + "/key.pem", "-passin", "pass:" + password, "-traditional", "-aes256", "-passout", "pass:" + password, "-out",
                    directory + "/legacy.pem"
                ])
            #expect(legacy.status == 0, "\(legacy.standardError)")
            #expect(refusal(try String(contentsOfFile: directory + "/legacy.pem", encoding: .utf8), password).contains("legacy OpenSSL way"))
        }
    }

    @Test("what is not a usable key is refused with the file named, never echoing the key")
    func badKeys() throws {
        let secret = SigningKey.generate(.ecdsaP256).pem
        #expect(throws: TrustError.self) { try SigningKey(pem: "not a key", source: "k.pem") }
        #expect(throws: TrustError.self) { try VerifyingKey(pem: secret, source: "k.pem") }
        #expect(throws: TrustError.self) {
            try SigningKey(pem: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n", source: "k.pem", password: "x")
        }
        do {
            _ = try SigningKey(pem: secret.replacingOccurrences(of: "PRIVATE KEY", with: "CERTIFICATE"), source: "k.pem")
            Issue.record("a certificate was taken as a key")
        } catch let error as TrustError {
            #expect(error.description == "k.pem holds a PEM `CERTIFICATE`, not a private key")
        }
    }

    @Test("a bundle verifies with its key, and every tampering is refused with what failed", arguments: KeyType.allCases)
    func bundles(type: KeyType) throws {
        let key = SigningKey.generate(type), other = SigningKey.generate(type)
        let statement = ModelSigningStatement(
            modelName: "iris",
            resources: [
                .init(name: "model.onnx", sha256: Array(repeating: 1, count: 32)), .init(name: "labels.txt", sha256: Array(repeating: 2, count: 32))
            ])
        let bundle = try SigstoreBundle.signing(statement: statement.encoded(), with: key)
        let bytes = try bundle.encoded()
        let parsed = try SigstoreBundle.parse(bytes, source: "b.json")
        let payload = try parsed.verifiedStatement(with: key.publicKey, source: "b.json")
        #expect(try ModelSigningStatement.parse(payload, source: "b.json") == statement)
        #expect(statement.resources.map(\.name) == ["labels.txt", "model.onnx"], "sorted by path")

        func refusal(_ body: () throws -> Void) -> String {
            do { try body(); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal { _ = try parsed.verifiedStatement(with: other.publicKey, source: "b.json") }.contains("signed with another key"))
        var unhinted = parsed
        unhinted.verificationMaterial.publicKey = nil
        #expect(
            refusal { _ = try unhinted.verifiedStatement(with: other.publicKey, source: "b.json") } == "b.json: the signature does not verify with this key")

        // Another statement under the original signature.
        var swapped = parsed
        let forged = ModelSigningStatement(modelName: "iris", resources: [.init(name: "model.onnx", sha256: Array(repeating: 9, count: 32))])
        swapped.dsseEnvelope!.payload = Base64.encode(try forged.encoded())
        #expect(refusal { _ = try swapped.verifiedStatement(with: key.publicKey, source: "b.json") } == "b.json: the signature does not verify with this key")

        var retyped = parsed
        retyped.dsseEnvelope!.payloadType = "text/plain"
        #expect(refusal { _ = try retyped.verifiedStatement(with: key.publicKey, source: "b.json") }.contains("not an in-toto statement"))

        #expect(
            refusal { _ = try SigstoreBundle.parse(Array(#"{"mediaType": "application/json", "verificationMaterial": {}}"#.utf8), source: "b.json") }
                .contains("not a Sigstore bundle"))

        // A statement whose subject digest disagrees with its resources.
        let text = String(decoding: try statement.encoded(), as: UTF8.self)
        let root = Digest(bytes: statement.rootDigest).hex
        let lying = text.replacingOccurrences(of: root, with: String(repeating: "0", count: 64))
        #expect(
            refusal { _ = try ModelSigningStatement.parse(Array(lying.utf8), source: "s") }
                == "s: the statement's subject digest is not what its resources hash to")
    }
}
