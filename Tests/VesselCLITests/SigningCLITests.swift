import Foundation
import Testing
import VesselServer
import VesselTestSupport

/// `vessel keygen`, `vessel sign` and `vessel verify --key` against OpenSSF Model Signing's own
/// tool (PyPI `model-signing`, in .build/venv-signing): each verifies what the other signed.
@Suite("signing", .serialized)
struct SigningCLITests {
    static let modelSigning = TestSupport.packageRoot + "/.build/venv-signing/bin/model_signing"

    func requireTool() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.modelSigning) else {
            throw TestFailure(".build/venv-signing (scripts/onnx-test-data.sh) is missing")
        }
    }

    @Test(
        "vessel's signature verifies with model_signing on the unpacked files, and model_signing's with vessel; another key, a changed file or a flipped blob byte are refused, naming what failed"
    )
    func interop() throws {
        try requireTool()
        let home = try TestSupport.makeTemporaryDirectory("sign-home")
        defer { TestSupport.remove(home) }
        #expect(try TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let keygen = try TestSupport.vessel(["keygen", home + "/key.pem"], home: home)
        #expect(keygen.status == 0, "\(keygen.standardError)")
        let mode = try FileManager.default.attributesOfItem(atPath: home + "/key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status != 0, "keygen never overwrites a key")

        let signed = try TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem", "-o", home + "/iris.sig"], home: home)
        #expect(signed.status == 0, "\(signed.standardError)")
        #expect(!signed.standardOutput.contains("PRIVATE") && !signed.standardError.contains("PRIVATE"), "the key is never printed")
        let verified = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(verified.status == 0 && verified.standardOutput.contains("signature verified"), "\(verified.standardOutput) \(verified.standardError)")

        // model_signing accepts the files `vessel unpack` writes.
        #expect(try TestSupport.vessel(["unpack", "iris:1.0.0", home + "/files"], home: home).status == 0)
        let theirVerify = try TestSupport.run(
            Self.modelSigning, ["verify", "key", home + "/files", "--signature", home + "/iris.sig", "--public_key", home + "/key.pem.pub"])
        #expect(theirVerify.status == 0, "\(theirVerify.standardOutput) \(theirVerify.standardError)")

        // And vessel accepts a bundle model_signing made over them, with their key (an OpenSSL one).
        _ = try TestSupport.run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", home + "/theirs.pem"])
        _ = try TestSupport.run("openssl", ["ec", "-in", home + "/theirs.pem", "-pubout", "-out", home + "/theirs.pub"])
        let theirSign = try TestSupport.run(
            Self.modelSigning, ["sign", "key", home + "/files", "--private_key", home + "/theirs.pem", "--signature", home + "/theirs.sig"])
        #expect(theirSign.status == 0, "\(theirSign.standardError)")
        let accepted = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub", "--signature", home + "/theirs.sig"], home: home)
        #expect(accepted.status == 0, "\(accepted.standardError)")

        // Refusals, each naming what failed.
        let otherKey = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub"], home: home)
        #expect(otherKey.status != 0 && otherKey.standardError.contains("another key"), "\(otherKey.standardError)")
        try "changed\n".write(toFile: home + "/files/labels.txt", atomically: true, encoding: .utf8)
        _ = try TestSupport.run(
            Self.modelSigning, ["sign", "key", home + "/files", "--private_key", home + "/theirs.pem", "--signature", home + "/changed.sig"])
        let changed = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub", "--signature", home + "/changed.sig"], home: home)
        #expect(changed.status != 0 && changed.standardError.contains("labels.txt"), "\(changed.standardError)")
        let theirsOnChanged = try TestSupport.run(
            Self.modelSigning, ["verify", "key", home + "/files", "--signature", home + "/iris.sig", "--public_key", home + "/key.pem.pub"])
        #expect(theirsOnChanged.status != 0, "model_signing refuses the changed file too")

        // A flipped byte in a stored blob: the signature check re-hashes every layer.
        let blobs = home + "/blobs/sha256"
        let largest = try FileManager.default.contentsOfDirectory(atPath: blobs).max { a, b in
            ((try? FileManager.default.attributesOfItem(atPath: "\(blobs)/\(a)")[.size] as? Int) ?? 0)
                < ((try? FileManager.default.attributesOfItem(atPath: "\(blobs)/\(b)")[.size] as? Int) ?? 0)
        }!
        var bytes = try Data(contentsOf: URL(fileURLWithPath: "\(blobs)/\(largest)"))
        bytes[bytes.count / 2] ^= 0xFF
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: "\(blobs)/\(largest)")
        try bytes.write(to: URL(fileURLWithPath: "\(blobs)/\(largest)"))
        let flipped = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(flipped.status != 0, "\(flipped.standardOutput)")
    }

    @Test("an Ed25519 key signs and verifies; an encrypted or malformed key is refused; gc drops a signature with its artifact")
    func keysAndGarbage() throws {
        let home = try TestSupport.makeTemporaryDirectory("sign-keys")
        defer { TestSupport.remove(home) }
        #expect(try TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try TestSupport.vessel(["keygen", home + "/ed.pem", "--type", "ed25519"], home: home).status == 0)
        #expect(try TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/ed.pem"], home: home).status == 0)
        #expect(try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/ed.pem.pub"], home: home).status == 0)

        try "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n".write(
            toFile: home + "/enc.pem", atomically: true, encoding: .utf8)
        let encrypted = try TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/enc.pem"], home: home)
        #expect(encrypted.status != 0 && encrypted.standardError.contains("encrypted"), "\(encrypted.standardError)")
        try "not a key".write(toFile: home + "/junk.pem", atomically: true, encoding: .utf8)
        #expect(try TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/junk.pem"], home: home).status != 0)
        let unsigned = try TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/ed.pem.pub", "--signature", home + "/junk.pem"], home: home)
        #expect(unsigned.status != 0 && unsigned.standardError.contains("not a Sigstore bundle"), "\(unsigned.standardError)")

        let index = { (try? String(contentsOfFile: home + "/index.json", encoding: .utf8)) ?? "" }
        #expect(index().contains("dev.vessel.referrer.subject"))
        #expect(try TestSupport.vessel(["rm", "iris:1.0.0"], home: home).status == 0)
        #expect(try TestSupport.vessel(["gc"], home: home).status == 0)
        #expect(!index().contains("dev.vessel.referrer.subject"), "the signature went with its artifact")
        #expect((try FileManager.default.contentsOfDirectory(atPath: home + "/blobs/sha256")).isEmpty)
    }

    @Test("serve --require-signature serves a signed artifact, and stops before listening for an unsigned one, another key's or a directory")
    func requireSignature() throws {
        let home = try TestSupport.makeTemporaryDirectory("sign-serve")
        defer { TestSupport.remove(home) }
        #expect(try TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status == 0)
        #expect(try TestSupport.vessel(["keygen", home + "/other.pem"], home: home).status == 0)
        let unsigned = try ServeProcess(["iris:1.0.0", "--require-signature", home + "/key.pem.pub"], home: home)
        #expect(unsigned.waitForExit() != 0)
        #expect(unsigned.standardError.contains("has no signature") && !unsigned.standardError.contains("listening"), "\(unsigned.standardError)")
        let directory = try ServeProcess([TestSupport.exampleDirectory, "--require-signature", home + "/key.pem.pub"], home: home)
        #expect(directory.waitForExit() != 0 && directory.standardError.contains("is a directory"), "\(directory.standardError)")

        #expect(try TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home).status == 0)
        let other = try ServeProcess(["iris:1.0.0", "--require-signature", home + "/other.pem.pub"], home: home)
        #expect(other.waitForExit() != 0 && other.standardError.contains("another key"), "\(other.standardError)")
        let signed = try ServeProcess(["iris:1.0.0", "--require-signature", home + "/key.pem.pub"], home: home)
        let port = try signed.waitForReady()
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/ready", timeout: 10).status == 200)
        // The page says what was checked.
        let listed = try LoopbackClient.request("GET", port: port, path: "/ui/api/models", timeout: 10)
        #expect(listed.text.contains("verified with key"), "\(listed.text)")
        kill(signed.process.processIdentifier, SIGTERM)
        #expect(signed.waitForExit() == 0)
    }
}
