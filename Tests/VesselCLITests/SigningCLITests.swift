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
    func interop() async throws {
        try requireTool()
        let home = try TestSupport.makeTemporaryDirectory("sign-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let keygen = try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home)
        #expect(keygen.status == 0, "\(keygen.standardError)")
        let mode = try FileManager.default.attributesOfItem(atPath: home + "/key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status != 0, "keygen never overwrites a key")

        let signed = try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem", "-o", home + "/iris.sig"], home: home)
        #expect(signed.status == 0, "\(signed.standardError)")
        #expect(!signed.standardOutput.contains("PRIVATE") && !signed.standardError.contains("PRIVATE"), "the key is never printed")
        let verified = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(verified.status == 0 && verified.standardOutput.contains("signature verified"), "\(verified.standardOutput) \(verified.standardError)")

        // model_signing accepts the files `vessel unpack` writes.
        #expect(try await TestSupport.vessel(["unpack", "iris:1.0.0", home + "/files"], home: home).status == 0)
        let theirVerify = try await TestSupport.run(
            Self.modelSigning, ["verify", "key", home + "/files", "--signature", home + "/iris.sig", "--public_key", home + "/key.pem.pub"])
        #expect(theirVerify.status == 0, "\(theirVerify.standardOutput) \(theirVerify.standardError)")

        // And vessel accepts a bundle model_signing made over them, with their key (an OpenSSL one).
        _ = try await TestSupport.run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", home + "/theirs.pem"])
        _ = try await TestSupport.run("openssl", ["ec", "-in", home + "/theirs.pem", "-pubout", "-out", home + "/theirs.pub"])
        let theirSign = try await TestSupport.run(
            Self.modelSigning, ["sign", "key", home + "/files", "--private_key", home + "/theirs.pem", "--signature", home + "/theirs.sig"])
        #expect(theirSign.status == 0, "\(theirSign.standardError)")
        let accepted = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub", "--signature", home + "/theirs.sig"], home: home)
        #expect(accepted.status == 0, "\(accepted.standardError)")

        // Refusals, each naming what failed.
        let otherKey = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub"], home: home)
        #expect(otherKey.status != 0 && otherKey.standardError.contains("another key"), "\(otherKey.standardError)")
        try "changed\n".write(toFile: home + "/files/labels.txt", atomically: true, encoding: .utf8)
        _ = try await TestSupport.run(
            Self.modelSigning, ["sign", "key", home + "/files", "--private_key", home + "/theirs.pem", "--signature", home + "/changed.sig"])
        let changed = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/theirs.pub", "--signature", home + "/changed.sig"], home: home)
        #expect(changed.status != 0 && changed.standardError.contains("labels.txt"), "\(changed.standardError)")
        let theirsOnChanged = try await TestSupport.run(
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
        let flipped = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(flipped.status != 0, "\(flipped.standardOutput)")
    }

    /// Checks what `vessel pack` and `vessel sign` attached, with the ecosystem's own libraries:
    /// the SBOM against CycloneDX 1.5's strict schema (cyclonedx-python-lib), the provenance as
    /// an in-toto v1 statement with an SLSA v1 predicate (in-toto-attestation's protos), every
    /// Sigstore bundle in the OCI layout through sigstore-protobuf-specs, and each attestation's
    /// DSSE signature through the in-toto package's `Envelope.verify`.
    static let attestationCheck = #"""
        import base64, json, sys
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
        from google.protobuf import json_format
        from in_toto_attestation.v1 import statement, statement_pb2
        from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

        home, provenance_path, sbom_path, digest = sys.argv[1:5]
        public_key = sys.argv[5] if len(sys.argv) > 5 else None
        errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sbom_path).read())
        assert errors is None, f"the SBOM is not CycloneDX 1.5: {errors}"
        text = open(provenance_path).read()
        parsed = json_format.Parse(text, statement_pb2.Statement())
        statement.Statement.copy_from_pb(parsed).validate()
        assert parsed.subject[0].digest["sha256"] == digest.removeprefix("sha256:"), parsed.subject
        predicate = json_format.Parse(json.dumps(json.loads(text)["predicate"]), provenance_pb2.Provenance())
        assert predicate.build_definition.build_type == "https://vessel.dev/pack/v1"
        print("resolved", " ".join(f"{d.name}={d.digest['sha256']}" for d in predicate.build_definition.resolved_dependencies))
        if public_key is None:
            sys.exit(0)
        import sigstore_protobuf_specs.dev.sigstore.bundle.v1 as sigstore_bundle
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        from in_toto.models.metadata import Envelope
        from securesystemslib.signer import SSlibKey
        key = SSlibKey.from_crypto(load_pem_public_key(open(public_key, "rb").read()))
        verified = []
        for entry in json.load(open(f"{home}/index.json"))["manifests"]:
            if entry.get("artifactType") != "application/vnd.dev.sigstore.bundle.v0.3+json":
                continue
            manifest = json.load(open(f"{home}/blobs/sha256/{entry['digest'][7:]}"))
            assert manifest["subject"]["digest"] == digest
            body = open(f"{home}/blobs/sha256/{manifest['layers'][0]['digest'][7:]}").read()
            sigstore_bundle.Bundle.from_dict(json.loads(body))
            predicate_type = manifest.get("annotations", {}).get("in-toto.io/predicate-type")
            if predicate_type is None:
                continue
            envelope = json.loads(body)["dsseEnvelope"]
            # DSSE's keyid is an unsigned hint; securesystemslib matches signatures to keys by it.
            for signature in envelope["signatures"]:
                signature["keyid"] = key.keyid
            signed = Envelope.from_dict(envelope)
            signed.verify([key], 1)
            payload = json.loads(signed.payload)
            assert payload["predicateType"] == predicate_type and payload["subject"][0]["digest"]["sha256"] == digest[7:]
            verified.append(predicate_type)
        print("verified", " ".join(sorted(verified)))
        """#

    @Test(
        "pack attaches SLSA provenance and a CycloneDX SBOM that the ecosystem's validators accept; sign signs both and in-toto verifies them; a re-pack's new provenance is refused until signed again"
    )
    func attestations() async throws {
        try requireTool()
        let home = try TestSupport.makeTemporaryDirectory("attest-home")
        defer { TestSupport.remove(home) }
        let model = try TestSupport.copyExample(to: home + "/iris")
        let packed = try await TestSupport.vessel(["pack", model], home: home)
        #expect(packed.status == 0 && packed.standardOutput.contains("attached SLSA provenance and a CycloneDX SBOM"), "\(packed.standardError)")
        let digest = try #require(packed.standardOutput.split(separator: "\n").first { $0.hasPrefix("digest ") }.map { String($0.dropFirst(7)) })
        let inspect = try await TestSupport.vessel(["inspect", "iris:1.0.0"], home: home)
        #expect(inspect.standardOutput.contains("provenance") && inspect.standardOutput.contains("https://cyclonedx.org/bom"), "\(inspect.standardOutput)")
        for kind in ["provenance", "sbom"] {
            let document = try await TestSupport.vessel(["inspect", "iris:1.0.0", "--attached", kind], home: home)
            #expect(document.status == 0, "\(document.standardError)")
            try TestSupport.write(document.standardOutput, to: "\(home)/\(kind).json")
        }
        let python = TestSupport.packageRoot + "/.build/venv-signing/bin/python"
        try TestSupport.write(Self.attestationCheck, to: home + "/check.py")
        let unsigned = try await TestSupport.run(python, [home + "/check.py", home, home + "/provenance.json", home + "/sbom.json", digest])
        #expect(unsigned.status == 0, "\(unsigned.standardError)")
        // The provenance names each file by the digest of its bytes, as openssl computes it.
        for file in ["model.onnx", "labels.txt", "vessel.yaml"] {
            let expected = try TestSupport.opensslDigest(model + "/" + file).dropFirst(7)
            #expect(unsigned.standardOutput.contains("\(file)=\(expected)"), "\(file): \(unsigned.standardOutput)")
        }
        let provenance = try String(contentsOfFile: home + "/provenance.json", encoding: .utf8)
        #expect(provenance.contains(#""examples":{"count":9,"result":"passed"}"#), "\(provenance)")

        #expect(try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status == 0)
        let signed = try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home)
        #expect(signed.status == 0 && signed.standardOutput.contains("signed its attached provenance and sbom"), "\(signed.standardError)")
        let checked = try await TestSupport.run(
            python, [home + "/check.py", home, home + "/provenance.json", home + "/sbom.json", digest, home + "/key.pem.pub"])
        #expect(checked.status == 0, "\(checked.standardError)")
        #expect(checked.standardOutput.contains("verified https://cyclonedx.org/bom https://slsa.dev/provenance/v1"), "\(checked.standardOutput)")
        let verified = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(
            verified.status == 0 && verified.standardOutput.contains("signed attestation verified: https://slsa.dev/provenance/v1"), "\(verified.standardError)"
        )

        // Packing the same directory again gives the same artifact and a new provenance: its
        // signature no longer covers what is attached, and verify says so.
        let again = try await TestSupport.vessel(["pack", model], home: home)
        #expect(again.status == 0 && again.standardOutput.contains("digest \(digest)"), "the same artifact: \(again.standardOutput)")
        let repacked = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(
            repacked.status != 0 && repacked.standardError.contains(" of iris:1.0.0 is not the one the signed attestation"), "\(repacked.standardError)")
        // Signing again covers the new one.
        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/key.pem.pub"], home: home).status == 0)

        // --no-attestations attaches nothing, and asking for a document says so.
        try TestSupport.write(
            try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8).replacingOccurrences(of: "version: 1.0.0", with: "version: 1.0.1"),
            to: model + "/vessel.yaml")
        #expect(try await TestSupport.vessel(["pack", model, "--no-test", "--no-attestations"], home: home).status == 0)
        let none = try await TestSupport.vessel(["inspect", "iris:1.0.1", "--attached", "sbom"], home: home)
        #expect(none.status != 0 && none.standardError.contains("iris:1.0.1 has no sbom attached"), "\(none.standardError)")
        let wrongKind = try await TestSupport.vessel(["inspect", "iris:1.0.0", "--attached", "spdx"], home: home)
        #expect(wrongKind.status != 0 && wrongKind.standardError.contains("--attached takes provenance or sbom"), "\(wrongKind.standardError)")
    }

    @Test(
        "an Ed25519 key signs and verifies; an encrypted key (keygen --encrypt) signs with VESSEL_KEY_PASSWORD and is refused without it or with another; a malformed key is refused; gc drops the signatures with their artifact"
    )
    func keysAndGarbage() async throws {
        let home = try TestSupport.makeTemporaryDirectory("sign-keys")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["keygen", home + "/ed.pem", "--type", "ed25519"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/ed.pem"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/ed.pem.pub"], home: home).status == 0)

        // An encrypted key: written with --encrypt under VESSEL_KEY_PASSWORD, refused without it
        // or with another, and it signs with it.
        func withPassword(_ password: String?, _ arguments: [String]) async throws -> TestSupport.ProcessResult {
            try await TestSupport.run(TestSupport.vesselBinary, arguments, environment: ["VESSEL_HOME": home, "VESSEL_KEY_PASSWORD": password ?? ""])
        }
        #expect(try await withPassword(nil, ["keygen", home + "/enc.pem", "--encrypt"]).standardError.contains("VESSEL_KEY_PASSWORD, which is not set"))
        let made = try await withPassword("s3cret", ["keygen", home + "/enc.pem", "--encrypt"])
        #expect(made.status == 0 && made.standardOutput.contains("encrypted"), "\(made.standardError)")
        #expect(try String(contentsOfFile: home + "/enc.pem", encoding: .utf8).hasPrefix("-----BEGIN ENCRYPTED PRIVATE KEY-----"))
        let locked = try await withPassword(nil, ["sign", "iris:1.0.0", "--key", home + "/enc.pem"])
        #expect(locked.status != 0 && locked.standardError.contains("is encrypted; set VESSEL_KEY_PASSWORD"), "\(locked.standardError)")
        let wrong = try await withPassword("guess", ["sign", "iris:1.0.0", "--key", home + "/enc.pem"])
        #expect(wrong.status != 0 && wrong.standardError.contains("wrong password"), "\(wrong.standardError)")
        #expect(try await withPassword("s3cret", ["sign", "iris:1.0.0", "--key", home + "/enc.pem"]).status == 0)
        #expect(try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/enc.pem.pub"], home: home).status == 0)
        try "not a key".write(toFile: home + "/junk.pem", atomically: true, encoding: .utf8)
        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/junk.pem"], home: home).status != 0)
        let unsigned = try await TestSupport.vessel(["verify", "iris:1.0.0", "--key", home + "/ed.pem.pub", "--signature", home + "/junk.pem"], home: home)
        #expect(unsigned.status != 0 && unsigned.standardError.contains("not a Sigstore bundle"), "\(unsigned.standardError)")

        let index = { (try? String(contentsOfFile: home + "/index.json", encoding: .utf8)) ?? "" }
        #expect(index().contains("dev.vessel.referrer.subject"))
        #expect(try await TestSupport.vessel(["rm", "iris:1.0.0"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["gc"], home: home).status == 0)
        #expect(!index().contains("dev.vessel.referrer.subject"), "the signature went with its artifact")
        #expect((try FileManager.default.contentsOfDirectory(atPath: home + "/blobs/sha256")).isEmpty)
    }

    @Test("serve --require-signature serves a signed artifact, and stops before listening for an unsigned one, another key's or a directory")
    func requireSignature() async throws {
        let home = try TestSupport.makeTemporaryDirectory("sign-serve")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["keygen", home + "/other.pem"], home: home).status == 0)
        let unsigned = try ServeProcess(["iris:1.0.0", "--require-signature", home + "/key.pem.pub"], home: home)
        #expect(unsigned.waitForExit() != 0)
        #expect(unsigned.standardError.contains("has no signature") && !unsigned.standardError.contains("listening"), "\(unsigned.standardError)")
        let directory = try ServeProcess([TestSupport.exampleDirectory, "--require-signature", home + "/key.pem.pub"], home: home)
        #expect(directory.waitForExit() != 0 && directory.standardError.contains("is a directory"), "\(directory.standardError)")

        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home).status == 0)
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
