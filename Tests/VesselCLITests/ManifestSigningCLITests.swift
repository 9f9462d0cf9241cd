import Foundation
import Testing
import VesselServer
import Yams
import VesselTestSupport

/// `vessel sign` over a manifest digest in cosign's two forms — the Sigstore bundle cosign 3
/// writes, and the tag-form signature sigstore's policy-controller reads for a key — checked by
/// outside tools (sigstore-protobuf-specs and in-toto for the bundle, OpenSSL for the tag form),
/// carried by push and pull, and required by `deploy --signed-by`'s ClusterImagePolicy.
@Suite("signing an image's manifest")
struct ManifestSigningCLITests {
    static let python = TestSupport.packageRoot + "/.build/venv-signing/bin/python"

    /// Reads the store's OCI layout: the cosign bundle (parsed by sigstore-protobuf-specs, its
    /// DSSE signature checked by in-toto's `Envelope.verify`, its statement cosign's over the
    /// digest) and the tag-form layers (payload and base64 signature written out for OpenSSL).
    static let check = #"""
        import base64, json, sys
        import sigstore_protobuf_specs.dev.sigstore.bundle.v1 as sigstore_bundle
        from cryptography.hazmat.primitives.serialization import load_pem_public_key
        from in_toto.models.metadata import Envelope
        from securesystemslib.signer import SSlibKey

        home, digest, public_key, out = sys.argv[1:5]
        key = SSlibKey.from_crypto(load_pem_public_key(open(public_key, "rb").read()))
        bundles = others = tag_form = 0
        for entry in json.load(open(f"{home}/index.json"))["manifests"]:
            if entry.get("annotations", {}).get("dev.vessel.referrer.subject") != digest:
                continue
            manifest = json.load(open(f"{home}/blobs/sha256/{entry['digest'][7:]}"))
            assert manifest["subject"]["digest"] == digest
            if manifest.get("annotations", {}).get("dev.sigstore.bundle.predicateType") == "https://sigstore.dev/cosign/sign/v1":
                assert manifest["artifactType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
                assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
                body = json.loads(open(f"{home}/blobs/sha256/{manifest['layers'][0]['digest'][7:]}").read())
                sigstore_bundle.Bundle.from_dict(body)
                envelope = body["dsseEnvelope"]
                for signature in envelope["signatures"]:
                    signature["keyid"] = key.keyid
                signed = Envelope.from_dict(envelope)
                try:
                    signed.verify([key], 1)
                except Exception:
                    others += 1  # the other key's
                    continue
                statement = json.loads(signed.payload)
                assert statement["_type"] == "https://in-toto.io/Statement/v1", statement
                assert statement["predicateType"] == "https://sigstore.dev/cosign/sign/v1", statement
                assert statement["subject"] == [{"digest": {"sha256": digest[7:]}}], statement
                bundles += 1
            for layer in manifest["layers"]:
                if layer["mediaType"] != "application/vnd.dev.cosign.simplesigning.v1+json":
                    continue
                payload = open(f"{home}/blobs/sha256/{layer['digest'][7:]}", "rb").read()
                claim = json.loads(payload)["critical"]
                assert claim["image"]["docker-manifest-digest"] == digest, claim
                assert claim["type"] == "cosign container image signature", claim
                open(f"{out}/payload.{tag_form}", "wb").write(payload)
                open(f"{out}/signature.{tag_form}", "wb").write(base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]))
                tag_form += 1
        print("bundles", bundles, "others", others, "tag-form", tag_form)
        """#

    @Test(
        "an image's manifest signed both ways: in-toto, sigstore-protobuf-specs and OpenSSL verify them; other keys, other digests and a re-pointed tag are refused; push and pull carry them; deploy --signed-by writes a ClusterImagePolicy"
    )
    func imageSignatures() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw TestFailure(".build/venv-signing (scripts/onnx-test-data.sh) is missing")
        }
        let home = try TestSupport.makeTemporaryDirectory("sign-image")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0", "--binary", "/usr/bin/true"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0", "--modelcar"], home: home).status == 0)
        for name in ["key", "other"] { #expect(try await TestSupport.vessel(["keygen", home + "/\(name).pem"], home: home).status == 0) }

        let unsigned = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(unsigned.status != 0 && unsigned.standardError.contains("has no signature of its manifest by this key"), "\(unsigned.standardError)")
        let oms = try await TestSupport.vessel(["sign", "iris-image:1.0.0", "--key", home + "/key.pem", "--format", "oms"], home: home)
        #expect(oms.status != 0 && oms.standardError.contains("is an image: Model Signing covers a model artifact's files"), "\(oms.standardError)")
        // Signed twice by one key and once by another: one signature per key and form stays.
        for key in ["key", "other", "key"] {
            let signed = try await TestSupport.vessel(
                ["sign", "iris-image:1.0.0", "--key", home + "/\(key).pem", "-o", home + "/\(key).sigstore.json"], home: home)
            #expect(signed.status == 0 && signed.standardOutput.contains("(cosign): signature sha256:"), "\(signed.standardError)")
        }
        let inspected = try await TestSupport.vessel(["inspect", "iris-image:1.0.0"], home: home).standardOutput
        #expect(inspected.components(separatedBy: "signs the manifest digest (cosign)").count == 3, "\(inspected)")
        #expect(inspected.components(separatedBy: "cosign tag form").count == 3, "\(inspected)")
        let verified = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(verified.status == 0, "\(verified.standardError)")
        #expect(verified.standardOutput.contains("(cosign, 2 signatures)"), "the bundle and the tag form: \(verified.standardOutput)")
        let digest = try #require(
            verified.standardOutput.split(separator: " ").first { $0.hasPrefix("sha256:") }.map { String($0.prefix(71)) }, "\(verified.standardOutput)")

        // Outside tools on the store's own layout.
        try TestSupport.write(Self.check, to: home + "/check.py")
        let out = home + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let checked = try await TestSupport.run(Self.python, [home + "/check.py", home, digest, home + "/key.pem.pub", out])
        #expect(checked.status == 0, "\(checked.standardError)")
        #expect(checked.standardOutput.contains("bundles 1 others 1 tag-form 2"), "\(checked.standardOutput)")
        var opensslAccepted = 0
        for index in 0..<2 {
            let result = try await TestSupport.run(
                "openssl", ["dgst", "-sha256", "-verify", home + "/key.pem.pub", "-signature", "\(out)/signature.\(index)", "\(out)/payload.\(index)"])
            if result.standardOutput.contains("Verified OK") { opensslAccepted += 1 }
        }
        #expect(opensslAccepted == 1, "one tag-form layer is this key's, the other the other key's")

        // Refused: a bundle for another digest, a tag pointed at another (unsigned) image, a
        // byte flipped in a blob.
        let otherDigest = try await TestSupport.vessel(
            ["verify", "iris-modelcar:1.0.0", "--key", home + "/key.pem.pub", "--signature", home + "/key.sigstore.json"], home: home)
        #expect(
            otherDigest.status != 0 && otherDigest.standardError.contains("signs sha256:\(digest.dropFirst(7).prefix(12))…, not sha256:"),
            "\(otherDigest.standardError)")
        #expect(try await TestSupport.vessel(["tag", "iris-modelcar:1.0.0", "moved:1"], home: home).status == 0)
        let moved = try await TestSupport.vessel(["verify", "moved:1", "--key", home + "/key.pem.pub"], home: home)
        #expect(moved.status != 0 && moved.standardError.contains("moved:1 has no signature of its manifest by this key"), "\(moved.standardError)")

        // Carried by push (the tag form also under cosign's sha256-<hex>.sig tag) and pull.
        let registry = try LocalRegistry()
        let pushed = try await TestSupport.vessel(["push", "iris-image:1.0.0", "\(registry.host)/ml/iris", "--insecure"], home: home)
        #expect(pushed.status == 0, "\(pushed.standardError)")
        let tagged = try await TestSupport.run(
            "skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/ml/iris:sha256-\(digest.dropFirst(7)).sig"])
        #expect(tagged.status == 0, "\(tagged.standardError)")
        #expect(tagged.standardOutput.contains("application/vnd.dev.cosign.simplesigning.v1+json"), "\(tagged.standardOutput)")
        #expect(tagged.standardOutput.contains("dev.cosignproject.cosign/signature"), "\(tagged.standardOutput)")
        let empty = try TestSupport.makeTemporaryDirectory("sign-image-pull")
        defer { TestSupport.remove(empty) }
        let third = try TestSupport.makeTemporaryDirectory("sign-image-key")
        defer { TestSupport.remove(third) }
        #expect(try await TestSupport.vessel(["keygen", third + "/third.pem"], home: third).status == 0)
        let refusedPull = try await TestSupport.vessel(
            ["pull", "\(registry.host)/ml/iris:1.0.0", "--insecure", "--verify-key", third + "/third.pem.pub"], home: empty)
        #expect(refusedPull.status != 0 && refusedPull.standardError.contains("nothing was tagged"), "\(refusedPull.standardError)")
        #expect(!(try await TestSupport.vessel(["list"], home: empty).standardOutput.contains("ml/iris:")))
        let pulled = try await TestSupport.vessel(["pull", "\(registry.host)/ml/iris:1.0.0", "--insecure", "--verify-key", home + "/key.pem.pub"], home: empty)
        #expect(
            pulled.status == 0 && pulled.standardOutput.contains("signature verified: the manifest \(digest)"),
            "\(pulled.standardOutput) \(pulled.standardError)")
        // The tag form came too (pushing this store on would carry it): both signatures verify.
        #expect(pulled.standardOutput.contains("(cosign, 2 signatures)"), "\(pulled.standardOutput)")

        // deploy --signed-by: a ClusterImagePolicy the published CRD schema accepts, naming the
        // key; refused while an image is not signed by it.
        let deployed = try await TestSupport.vessel(
            ["deploy", "iris-image:1.0.0", "--kubernetes", "--image", "registry.example.com/ml/iris", "--signed-by", home + "/key.pem.pub"], home: home)
        #expect(deployed.status == 0, "\(deployed.standardError)")
        try TestSupport.write(deployed.standardOutput, to: home + "/manifests.yaml")
        let validated = try await TestSupport.run(
            TestSupport.packageRoot + "/.build/venv/bin/python", [TestSupport.packageRoot + "/Tests/Fixtures/crds/validate.py", home + "/manifests.yaml"])
        #expect(validated.status == 0 && validated.standardOutput.contains("passed for clusterimagepolicy/iris-signed"), "\(validated.standardOutput)")
        let documents = try Yams.load_all(yaml: deployed.standardOutput).compactMap { $0 as? [String: Any] }
        let policy = try #require(documents.first { $0["kind"] as? String == "ClusterImagePolicy" }?["spec"] as? [String: Any])
        #expect((policy["images"] as? [[String: String]])?.map { $0["glob"] ?? "" } == ["registry.example.com/ml/iris:**", "registry.example.com/ml/iris@**"])
        let authority = try #require((policy["authorities"] as? [[String: Any]])?.first?["key"] as? [String: String])
        #expect(authority["data"] == (try String(contentsOfFile: home + "/key.pem.pub", encoding: .utf8)))
        #expect(authority["hashAlgorithm"] == "sha256")
        let notSigned = try await TestSupport.vessel(["deploy", "iris:1.0.0", "--kubernetes", "--mounted", "--signed-by", home + "/key.pem.pub"], home: home)
        #expect(notSigned.status != 0 && notSigned.standardError.contains("sign it first (vessel sign"), "\(notSigned.standardError)")

        // A byte flipped in the image's own layer: the signature still names the manifest, and
        // verify refuses the blob.
        let layers = try #require(
            (try JSONSerialization.jsonObject(
                with: Data(try await TestSupport.vessel(["inspect", "iris-image:1.0.0", "--json"], home: home).standardOutput.utf8))
                as? [String: Any])?["layers"] as? [[String: Any]])
        let runtimeLayer = try #require(layers.first?["digest"] as? String)
        try TestSupport.flipByte(in: home + "/blobs/sha256/" + runtimeLayer.dropFirst(7), at: 100)
        let flipped = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(flipped.status != 0 && flipped.standardError.contains(String(runtimeLayer.dropFirst(7).prefix(12))), "\(flipped.standardError)")

        // A manifest swapped for another image's under the same digest's name: refused before
        // any signature is looked at, naming the manifest.
        let modelCar = try #require(
            (try JSONSerialization.jsonObject(
                with: Data(try await TestSupport.vessel(["inspect", "iris-modelcar:1.0.0", "--json"], home: home).standardOutput.utf8)) as? [String: Any])?[
                    "digest"] as? String)
        let manifestPath = home + "/blobs/sha256/" + digest.dropFirst(7)
        try FileManager.default.removeItem(atPath: manifestPath)
        try FileManager.default.copyItem(atPath: home + "/blobs/sha256/" + modelCar.dropFirst(7), toPath: manifestPath)
        let swapped = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(swapped.status != 0 && swapped.standardError.contains(String(digest.dropFirst(7).prefix(12))), "\(swapped.standardError)")
    }
}

@Suite("an image's provenance and SBOM")
struct ImageAttestationCLITests {
    /// CycloneDX 1.5's strict schema (cyclonedx-python-lib) on the SBOM, in-toto-attestation's
    /// protos on the provenance; prints what they list.
    static let check = #"""
        import json, sys
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator
        from google.protobuf import json_format
        from in_toto_attestation.v1 import statement, statement_pb2
        from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

        provenance_path, sbom_path, digest = sys.argv[1:4]
        text = open(sbom_path).read()
        errors = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
        assert errors is None, f"the SBOM is not CycloneDX 1.5: {errors}"
        bom = json.loads(text)
        assert bom["metadata"]["component"]["type"] == "container"
        for component in bom["components"]:
            print("component", component["type"], component.get("purl") or component["name"], (component.get("hashes") or [{}])[0].get("content", "-"))
        text = open(provenance_path).read()
        parsed = json_format.Parse(text, statement_pb2.Statement())
        statement.Statement.copy_from_pb(parsed).validate()
        assert parsed.subject[0].digest["sha256"] == digest.removeprefix("sha256:"), parsed.subject
        predicate = json_format.Parse(json.dumps(json.loads(text)["predicate"]), provenance_pb2.Provenance())
        assert predicate.build_definition.build_type == "https://vessel.dev/image/v1"
        for dependency in predicate.build_definition.resolved_dependencies:
            print("resolved", dependency.name, dependency.digest["sha256"])
        """#

    @Test(
        "vessel image attaches SLSA provenance and a CycloneDX SBOM (binary, libraries with their Debian packages, Swift packages, model files) that the validators accept; sign signs them and verify checks them"
    )
    func imageAttestations() async throws {
        let python = ManifestSigningCLITests.python
        guard FileManager.default.isExecutableFile(atPath: python) else { throw TestFailure(".build/venv-signing (scripts/onnx-test-data.sh) is missing") }
        let home = try TestSupport.makeTemporaryDirectory("image-attest")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let built = try await TestSupport.vessel(["image", "iris:1.0.0"], home: home)
        #expect(built.status == 0 && built.standardOutput.contains("attached:      SLSA provenance and a CycloneDX SBOM"), "\(built.standardError)")
        let digest = try #require(built.standardOutput.split(separator: " ").first { $0.hasPrefix("sha256:") }.map { String($0.prefix(71)) })
        for kind in ["provenance", "sbom"] {
            let document = try await TestSupport.vessel(["inspect", "iris-image:1.0.0", "--attached", kind], home: home)
            #expect(document.status == 0, "\(document.standardError)")
            try TestSupport.write(document.standardOutput, to: "\(home)/\(kind).json")
        }
        try TestSupport.write(Self.check, to: home + "/check.py")
        let checked = try await TestSupport.run(python, [home + "/check.py", home + "/provenance.json", home + "/sbom.json", digest])
        #expect(checked.status == 0, "\(checked.standardError)")
        let listed = checked.standardOutput
        // The runtime binary and zlib (which it links for gzip) by the digest of their bytes, as
        // openssl computes it, zlib under its Debian package.
        let runtime = TestSupport.packageRoot + "/.build/debug/vessel-runtime"
        let runtimeDigest = try TestSupport.opensslDigest(runtime).dropFirst(7)
        #expect(listed.contains("component application vessel \(runtimeDigest)"), "\(listed)")
        #expect(listed.contains("resolved vessel \(runtimeDigest)"), "\(listed)")
        let zlib = try #require(listed.split(separator: "\n").first { $0.hasPrefix("component library pkg:deb/debian/zlib1g@") }, "\(listed)")
        let dpkg = try await TestSupport.run("dpkg-query", ["-W", "-f=${Version}", "zlib1g"]).standardOutput
        #expect(zlib.contains("zlib1g@\(dpkg)?arch="), "\(zlib) vs dpkg's \(dpkg)")
        // Swift packages the runtime is built from, and the model's files.
        #expect(listed.contains("component library pkg:swift/github.com/apple/swift-nio@"), "\(listed)")
        #expect(listed.contains("component library pkg:swift/github.com/hummingbird-project/hummingbird@"), "\(listed)")
        let onnx = try TestSupport.opensslDigest(TestSupport.exampleDirectory + "/model.onnx").dropFirst(7)
        #expect(listed.contains("component file model.onnx \(onnx)"), "\(listed)")

        // Signed with the image, and checked by verify.
        #expect(try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status == 0)
        let signed = try await TestSupport.vessel(["sign", "iris-image:1.0.0", "--key", home + "/key.pem"], home: home)
        #expect(signed.status == 0 && signed.standardOutput.contains("signed its attached provenance and sbom"), "\(signed.standardOutput)")
        let verified = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(verified.status == 0, "\(verified.standardError)")
        #expect(verified.standardOutput.contains("signed attestation verified: https://cyclonedx.org/bom"), "\(verified.standardOutput)")
        #expect(verified.standardOutput.contains("signed attestation verified: https://slsa.dev/provenance/v1"), "\(verified.standardOutput)")
        // Built again, the image gets new documents: the old signatures no longer cover them.
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0"], home: home).status == 0)
        let stale = try await TestSupport.vessel(["verify", "iris-image:1.0.0", "--key", home + "/key.pem.pub"], home: home)
        #expect(stale.status != 0 && stale.standardError.contains("is not the one the signed attestation"), "\(stale.standardError)")
        // --no-attestations attaches nothing (to another image: one with the same digest shares
        // what is attached to it).
        #expect(try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "bare:1", "--port", "9090", "--no-attestations"], home: home).status == 0)
        let none = try await TestSupport.vessel(["inspect", "bare:1", "--attached", "sbom"], home: home)
        #expect(none.status != 0 && none.standardError.contains("bare:1 has no sbom attached"), "\(none.standardError)")
    }
}

@Suite("the image runtime's own signature check")
struct RuntimeSignatureCLITests {
    /// The root filesystem of `artifact`'s image, unpacked by skopeo and umoci as a runtime would.
    func rootFilesystem(_ artifact: String, home: String, into directory: String) async throws -> String {
        let archive = directory + ".tar"
        let built = try await TestSupport.vessel(["image", artifact, "-o", archive], home: home)
        #expect(built.status == 0, "\(built.standardError)")
        let copy = try await TestSupport.run("skopeo", ["copy", "oci-archive:" + archive, "oci:" + directory + "-layout:image"])
        #expect(copy.status == 0, "\(copy.standardError)")
        let unpacked = try await TestSupport.run("umoci", ["unpack", "--rootless", "--image", directory + "-layout:image", directory])
        #expect(unpacked.status == 0, "\(unpacked.standardError)")
        return directory + "/rootfs"
    }

    @Test(
        "VESSEL_REQUIRE_SIGNATURE: the runtime serves an image whose files a signature by the key lists, and stops before listening for another key, an unsigned artifact's image, or files and index rewritten together"
    )
    func runtimeRequiresSignature() async throws {
        let home = try TestSupport.makeTemporaryDirectory("runtime-signature")
        defer { TestSupport.remove(home) }
        let model = try TestSupport.copyExample(to: home + "/iris")
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        for name in ["key", "other"] { #expect(try await TestSupport.vessel(["keygen", home + "/\(name).pem"], home: home).status == 0) }
        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home).status == 0)
        let root = try await rootFilesystem("iris:1.0.0", home: home, into: home + "/signed")
        let arguments = ["--verify-files", root + "/vessel/model.json", "iris=" + root]

        let server = try ServeProcess(runtime: arguments, environment: ["VESSEL_REQUIRE_SIGNATURE": home + "/key.pem.pub"])
        defer { kill(server.process.processIdentifier, SIGTERM); _ = server.waitForExit() }
        let port = try server.waitForReady()
        #expect(server.standardError.contains("signature 1 of iris 1.0.0 verified with key"), "\(server.standardError)")
        #expect(try LoopbackClient.request("GET", port: port, path: "/v2/health/ready").status == 200)

        func refused(_ arguments: [String], key: String) async throws -> String {
            let result = try await TestSupport.run(TestSupport.vesselBinary + "-runtime", ["serve", "--port", "0"] + arguments + ["--require-signature", key])
            #expect(result.status != 0, "\(result.standardError)")
            #expect(!result.standardError.contains("listening on"), "\(result.standardError)")
            return result.standardError
        }
        let other = try await refused(arguments, key: home + "/other.pem.pub")
        #expect(other.contains("no signature of iris's files verifies with this key") && other.contains("another key"), "\(other)")

        // An attacker who rewrites a file and its digest in the index: the index still matches
        // the files, but no longer what was signed.
        let index = root + "/vessel/model.json"
        let labels = root + "/labels.txt"
        try TestSupport.write("setosa\nversicolor\nvirginica-changed\n", to: labels)
        let changed = try TestSupport.opensslDigest(labels)
        var json = try String(contentsOfFile: index, encoding: .utf8)
        let entry = try #require(json.range(of: #""digest":"sha256:[0-9a-f]{64}","path":"labels.txt","size":\d+"#, options: .regularExpression), "\(json)")
        let size = try FileManager.default.attributesOfItem(atPath: labels)[.size] as? Int ?? 0
        json.replaceSubrange(entry, with: #""digest":"\#(changed)","path":"labels.txt","size":\#(size)"#)
        try TestSupport.write(json, to: index)
        let rewritten = try await refused(arguments, key: home + "/key.pem.pub")
        #expect(rewritten.contains("does not match the files") && rewritten.contains("labels.txt"), "\(rewritten)")

        // An image of an unsigned artifact carries nothing to check.
        try TestSupport.write(
            try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8).replacingOccurrences(of: "version: 1.0.0", with: "version: 1.0.1"),
            to: model + "/vessel.yaml")
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        let bare = try await rootFilesystem("iris:1.0.1", home: home, into: home + "/unsigned")
        let unsigned = try await refused(["--verify-files", bare + "/vessel/model.json", "iris=" + bare], key: home + "/key.pem.pub")
        #expect(unsigned.contains("carries no signature of its files: sign the artifact (vessel sign) before building the image"), "\(unsigned)")
    }
}
