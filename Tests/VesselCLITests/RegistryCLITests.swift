import Foundation
import Testing
import VesselTestSupport

/// `vessel` running in the background with its output in a file, to be killed half-way.
final class BackgroundVessel {
    let process = Process()
    let outputPath: String

    init(_ arguments: [String], home: String) throws {
        outputPath = home + "/background-\(UUID().uuidString).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: TestSupport.vesselBinary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["VESSEL_HOME": home]) { $1 }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

    /// Waits until `condition` holds (polling every 2 ms), then SIGKILLs the process.
    func kill(when condition: () -> Bool) throws {
        let reached = TestSupport.waitUntil(timeout: 60, interval: 0.002, gaveUp: { !process.isRunning }, condition)
        if !reached, !process.isRunning { throw TestFailure("finished before it could be interrupted: \(output)") }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A model whose weights are several large files, so a push or pull can be cut half-way.
func makeLargeModel(in directory: String, files: [(String, Int)]) throws -> String {
    let model = try TestSupport.copyExample(to: directory)
    var yaml = try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8)
    var listed = ""
    for (index, (name, megabytes)) in files.enumerated() {
        // Distinct content per file: a byte pattern seeded by the index.
        var bytes = [UInt8](repeating: 0, count: megabytes << 20)
        var state = UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
        for offset in stride(from: 0, to: bytes.count, by: 4096) {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[offset] = UInt8(truncatingIfNeeded: state >> 56)
        }
        _ = FileManager.default.createFile(atPath: model + "/" + name, contents: Data(bytes))
        listed += "  - path: \(name)\n    role: weights\n"
    }
    yaml = yaml.replacingOccurrences(of: "  - path: README.md\n    role: doc\n", with: "  - path: README.md\n    role: doc\n" + listed)
    try TestSupport.write(yaml, to: model + "/vessel.yaml")
    return model
}

@Suite("vessel push and pull against a real registry", .serialized)
struct RegistryCLITests {
    @Test("artifact and image round trip: skopeo reads them back, an empty store pulls and verifies them, the pulled image runs")
    func roundTrip() async throws {
        let registry = try LocalRegistry()
        let home = try TestSupport.makeTemporaryDirectory("push-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory], home: home).status == 0)
        let pushed = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(pushed.status == 0, "\(pushed.standardError)")
        #expect(pushed.standardOutput.contains("pushed iris:1.0.0 to \(registry.host)/models/iris:1.0.0"))
        let raw = try await TestSupport.run("skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/models/iris:1.0.0"])
        #expect(raw.status == 0, "\(raw.standardError)")
        #expect(raw.standardOutput.contains("\"artifactType\":\"application/vnd.cncf.model.manifest.v1+json\""))

        let image = try await TestSupport.vessel(["image", "iris:1.0.0", "-t", "iris-image:1.0.0"], home: home)
        #expect(image.status == 0, "\(image.standardError)")
        let pushedImage = try await TestSupport.vessel(["push", "iris-image:1.0.0", "\(registry.host)/models/iris-image", "--insecure"], home: home)
        #expect(pushedImage.status == 0, "\(pushedImage.standardError)")
        // The model layers are the artifact's blobs: mounted across repositories, never sent again.
        for file in ["model.onnx", "labels.txt", "README.md", "vessel.yaml"] {
            #expect(pushedImage.standardOutput.contains("\(file): mounted from models/iris"), "\(pushedImage.standardOutput)")
        }
        let inspected = try await TestSupport.run("skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.host)/models/iris-image:1.0.0"])
        #expect(inspected.status == 0, "\(inspected.standardError)")
        #expect(inspected.standardOutput.contains("\"org.opencontainers.image.title\": \"iris\""))

        let empty = try TestSupport.makeTemporaryDirectory("pull-home")
        defer { TestSupport.remove(empty) }
        let pulled = try await TestSupport.vessel(["pull", "\(registry.host)/models/iris:1.0.0", "--insecure"], home: empty)
        #expect(pulled.status == 0, "\(pulled.standardError)")
        #expect(pulled.standardOutput.contains("as models/iris:1.0.0"))
        #expect(try await TestSupport.vessel(["verify", "models/iris:1.0.0"], home: empty).status == 0)
        let pulledImage = try await TestSupport.vessel(
            ["pull", "\(registry.host)/models/iris-image:1.0.0", "--insecure", "--as", "iris-image:1.0.0"], home: empty)
        #expect(pulledImage.status == 0, "\(pulledImage.standardError)")
        for file in ["model.onnx", "labels.txt", "README.md", "vessel.yaml"] {
            #expect(!pulledImage.standardOutput.contains("\(file): pulled"), "the model layers came with the artifact: \(pulledImage.standardOutput)")
        }
        #expect(try await TestSupport.vessel(["verify", "iris-image:1.0.0"], home: empty).status == 0)
        let inImage = try await TestSupport.vessel(["test", "iris-image:1.0.0", "--in-image"], home: empty)
        #expect(inImage.status == 0, "\(inImage.standardOutput) \(inImage.standardError)")
        #expect(inImage.standardOutput.contains("9 output(s) of the examples passed"))

        // By digest too, and a digest that does not match is refused with nothing stored.
        let digest = try #require(pushed.standardOutput.split(separator: " ").first { $0.hasPrefix("sha256:") }.map { String($0.prefix(71)) })
        let byDigest = try await TestSupport.vessel(["pull", "\(registry.host)/models/iris@\(digest)", "--insecure", "--as", "again:1"], home: empty)
        #expect(byDigest.status == 0, "\(byDigest.standardError)")
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        let refused = try await TestSupport.vessel(["pull", "\(registry.host)/models/iris@\(wrong)", "--insecure", "--as", "wrong:1"], home: empty)
        #expect(refused.status != 0)
        #expect(!(try await TestSupport.vessel(["list"], home: empty).standardOutput.contains("wrong:1")))
        let missing = try await TestSupport.vessel(["pull", "\(registry.host)/models/nothing:1.0.0", "--insecure"], home: empty)
        #expect(missing.status != 0)
        #expect(missing.standardError.contains("404"), "\(missing.standardError)")
    }

    @Test("a second version re-pushes only what changed")
    func secondVersion() async throws {
        let registry = try LocalRegistry()
        let home = try TestSupport.makeTemporaryDirectory("version-home")
        defer { TestSupport.remove(home) }
        let model = try makeLargeModel(in: home + "/model", files: [("weights.bin", 8)])
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home).status == 0)
        try TestSupport.write("setosa\nversicolor\nvirginica (renamed)\n", to: model + "/labels.txt")
        let yaml = try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8)
        try TestSupport.write(yaml.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.1.0"), to: model + "/vessel.yaml")
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        let second = try await TestSupport.vessel(["push", "iris:1.1.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(second.status == 0, "\(second.standardError)")
        #expect(second.standardOutput.contains("weights.bin: already there"), "\(second.standardOutput)")
        #expect(second.standardOutput.contains("model.onnx: already there"))
        #expect(second.standardOutput.contains("labels.txt: pushed"))
        // labels.txt, vessel.yaml and the config, then the new version's provenance and SBOM: 5
        // uploads, well under the 8 MiB of weights.
        #expect(second.standardOutput.contains("5 uploaded"), "\(second.standardOutput)")
    }

    @Test("a push killed half-way resumes: finished blobs are not sent again; a killed pull resumes with Range and shows nothing until done")
    func interrupted() async throws {
        let registry = try LocalRegistry()
        let home = try TestSupport.makeTemporaryDirectory("resume-home")
        defer { TestSupport.remove(home) }
        let model = try makeLargeModel(in: home + "/model", files: [("a.bin", 96), ("b.bin", 96), ("c.bin", 96), ("d.bin", 96)])
        #expect(try await TestSupport.vessel(["pack", model, "--no-test"], home: home).status == 0)
        let destination = "\(registry.host)/models/big"
        let push = try BackgroundVessel(["push", "iris:1.0.0", destination, "--insecure", "--chunk-size", "8"], home: home)
        try push.kill { push.output.components(separatedBy: ".bin: pushed").count - 1 >= 2 }
        let before = registry.storedBlobDigests
        let resumed = try await TestSupport.vessel(["push", "iris:1.0.0", destination, "--insecure", "--chunk-size", "8"], home: home)
        #expect(resumed.status == 0, "\(resumed.standardError)")
        let alreadyThere = resumed.standardOutput.components(separatedBy: ".bin: already there").count - 1
        #expect(alreadyThere >= 2, "\(push.output)\n---\n\(resumed.standardOutput)")
        #expect(registry.storedBlobDigests.isSuperset(of: before))

        // Pull it into an empty store, killed once part of a blob has arrived.
        let empty = try TestSupport.makeTemporaryDirectory("resume-pull")
        defer { TestSupport.remove(empty) }
        let pull = try BackgroundVessel(["pull", destination + ":1.0.0", "--insecure", "--as", "big:1"], home: empty)
        try pull.kill {
            let partials = (try? FileManager.default.contentsOfDirectory(atPath: empty + "/tmp"))?.filter { $0.hasPrefix("partial-") } ?? []
            return partials.contains { ((try? FileManager.default.attributesOfItem(atPath: empty + "/tmp/" + $0)[.size] as? Int) ?? 0) > 1 << 20 }
        }
        #expect(!(try await TestSupport.vessel(["list"], home: empty).standardOutput.contains("big:1")), "nothing half-pulled is visible")
        let finished = try await TestSupport.vessel(["pull", destination + ":1.0.0", "--insecure", "--as", "big:1"], home: empty)
        #expect(finished.status == 0, "\(finished.standardError)")
        #expect(finished.standardOutput.contains("resuming at"), "\(finished.standardOutput)")
        #expect(try await TestSupport.vessel(["verify", "big:1"], home: empty).status == 0)
    }

    @Test(
        "a signature travels with its artifact: pushed under the tag-schema fallback (skopeo lists it), pulled with it, and --verify-key tags nothing unsigned or signed by another key"
    )
    func signatures() async throws {
        let registry = try LocalRegistry()
        let home = try TestSupport.makeTemporaryDirectory("signed-push")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["keygen", home + "/key.pem"], home: home).status == 0)
        #expect(try await TestSupport.vessel(["keygen", home + "/other.pem"], home: home).status == 0)
        // Unsigned first: a pull that asks for a signature tags nothing.
        #expect(try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/unsigned", "--insecure"], home: home).status == 0)
        let empty = try TestSupport.makeTemporaryDirectory("signed-pull")
        defer { TestSupport.remove(empty) }
        let unsigned = try await TestSupport.vessel(
            ["pull", "\(registry.host)/models/unsigned:1.0.0", "--insecure", "--verify-key", home + "/key.pem.pub"], home: empty)
        #expect(unsigned.status != 0 && unsigned.standardError.contains("no signature"), "\(unsigned.standardError)")
        #expect(!(try await TestSupport.vessel(["list"], home: empty).standardOutput.contains("models/unsigned:")))

        #expect(try await TestSupport.vessel(["sign", "iris:1.0.0", "--key", home + "/key.pem"], home: home).status == 0)
        let pushed = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/signed", "--insecure"], home: home)
        // The files signature, the manifest signature (bundle and tag form), and the provenance and
        // SBOM `pack` attached with the signature of each.
        #expect(
            pushed.status == 0 && pushed.standardOutput.contains("7 referrer(s) (signatures, provenance, SBOM) pushed"),
            "\(pushed.standardOutput) \(pushed.standardError)")
        let digest = try #require(pushed.standardOutput.split(separator: " ").first { $0.hasPrefix("sha256:") }.map { String($0.prefix(71)) })
        let listed = try await TestSupport.run(
            "skopeo", ["inspect", "--raw", "--tls-verify=false", "docker://\(registry.host)/models/signed:sha256-\(digest.dropFirst(7))"])
        #expect(
            listed.status == 0 && listed.standardOutput.contains("application/vnd.dev.sigstore.bundle.v0.3+json"),
            "\(listed.standardOutput) \(listed.standardError)")

        let wrong = try await TestSupport.vessel(
            ["pull", "\(registry.host)/models/signed:1.0.0", "--insecure", "--verify-key", home + "/other.pem.pub"], home: empty)
        #expect(wrong.status != 0 && wrong.standardError.contains("another key"), "\(wrong.standardError)")
        #expect(!(try await TestSupport.vessel(["list"], home: empty).standardOutput.contains("models/signed:")))
        let good = try await TestSupport.vessel(
            ["pull", "\(registry.host)/models/signed:1.0.0", "--insecure", "--verify-key", home + "/key.pem.pub"], home: empty)
        #expect(good.status == 0 && good.standardOutput.contains("signature verified"), "\(good.standardOutput) \(good.standardError)")
        // The signature came with it: verify finds it in the pulling store.
        let verified = try await TestSupport.vessel(["verify", "models/signed:1.0.0", "--key", home + "/key.pem.pub"], home: empty)
        #expect(verified.status == 0, "\(verified.standardError)")
        // So did the provenance and the SBOM, with their signatures.
        #expect(verified.standardOutput.contains("signed attestation verified: https://slsa.dev/provenance/v1"), "\(verified.standardOutput)")
        #expect(verified.standardOutput.contains("signed attestation verified: https://cyclonedx.org/bom"), "\(verified.standardOutput)")
        let provenance = try await TestSupport.vessel(["inspect", "models/signed:1.0.0", "--attached", "provenance"], home: empty)
        #expect(
            provenance.status == 0 && provenance.standardOutput.contains(#""predicateType":"https://slsa.dev/provenance/v1""#), "\(provenance.standardError)")
    }

    @Test("token auth: the Bearer realm flow against a token server, refused without or with wrong credentials")
    func tokenAuth() async throws {
        let registry = try LocalRegistry(username: "bob", password: "hunter2", auth: .token)
        let home = try TestSupport.makeTemporaryDirectory("token-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let anonymous = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(anonymous.status != 0)
        #expect(anonymous.standardError.contains("401 no token"), "\(anonymous.standardError)")

        let login = try await TestSupport.run(
            "sh", ["-c", "printf hunter2 | '\(TestSupport.vesselBinary)' login \(registry.host) -u bob"], environment: ["VESSEL_HOME": home])
        #expect(login.status == 0, "\(login.standardError)")
        let pushed = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(pushed.status == 0, "\(pushed.standardError)")
        // A second repository: the mount needs a token for both scopes.
        let mounted = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/copy", "--insecure"], home: home)
        #expect(mounted.status == 0, "\(mounted.standardError)")
        #expect(mounted.standardOutput.contains("mounted from models/iris"), "\(mounted.standardOutput)")
        let pulled = try await TestSupport.vessel(["pull", "\(registry.host)/models/copy:1.0.0", "--insecure", "--as", "copy:1"], home: home)
        #expect(pulled.status == 0, "\(pulled.standardError)")
        // skopeo, given the same credentials, reads what was pushed.
        let inspect = try await TestSupport.run(
            "skopeo", ["inspect", "--raw", "--tls-verify=false", "--creds", "bob:hunter2", "docker://\(registry.host)/models/iris:1.0.0"])
        #expect(inspect.status == 0, "\(inspect.standardError)")

        let wrong = try await TestSupport.run(
            "sh",
            [
                "-c",
                "printf nope | '\(TestSupport.vesselBinary)' login \(registry.host) -u bob && '\(TestSupport.vesselBinary)' pull \(registry.host)/models/iris:1.0.0 --insecure"
            ],
            environment: ["VESSEL_HOME": home])
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("401 no token"), "\(wrong.standardError)")
    }

    @Test("basic auth: refused without credentials, accepted after vessel login, and from Docker's config")
    func basicAuth() async throws {
        let registry = try LocalRegistry(username: "alice", password: "s3cret")
        let home = try TestSupport.makeTemporaryDirectory("auth-home")
        defer { TestSupport.remove(home) }
        #expect(try await TestSupport.vessel(["pack", TestSupport.exampleDirectory, "--no-test"], home: home).status == 0)
        let refused = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("vessel login"), "\(refused.standardError)")

        let login = try await TestSupport.run(
            "sh", ["-c", "printf s3cret | '\(TestSupport.vesselBinary)' login \(registry.host) -u alice"], environment: ["VESSEL_HOME": home])
        #expect(login.status == 0, "\(login.standardError)")
        var info = stat()
        stat(home + "/auth.json", &info)
        #expect(info.st_mode & 0o777 == 0o600)
        let pushed = try await TestSupport.vessel(["push", "iris:1.0.0", "\(registry.host)/models/iris", "--insecure"], home: home)
        #expect(pushed.status == 0, "\(pushed.standardError)")

        // Docker's config file, as `docker login` leaves it.
        let other = try TestSupport.makeTemporaryDirectory("docker-config")
        defer { TestSupport.remove(other) }
        let auth = Data("alice:s3cret".utf8).base64EncodedString()
        try TestSupport.write("{\"auths\":{\"\(registry.host)\":{\"auth\":\"\(auth)\"}}}", to: other + "/config.json")
        let pulled = try await TestSupport.run(
            TestSupport.vesselBinary, ["pull", "\(registry.host)/models/iris:1.0.0", "--insecure"],
            environment: ["VESSEL_HOME": other + "/store", "DOCKER_CONFIG": other])
        #expect(pulled.status == 0, "\(pulled.standardError)")
        let wrong = try await TestSupport.run(
            "sh",
            [
                "-c",
                "printf nope | '\(TestSupport.vesselBinary)' login \(registry.host) -u alice && '\(TestSupport.vesselBinary)' pull \(registry.host)/models/iris:1.0.0 --insecure"
            ],
            environment: ["VESSEL_HOME": home])
        #expect(wrong.status != 0)
        #expect(wrong.standardError.contains("401"), "\(wrong.standardError)")
    }
}
