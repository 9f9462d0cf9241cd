import Foundation
import Testing
import VesselStore
import VesselTestSupport

/// Drives the real `vessel` binary, as a user does.
@Suite("vessel command line")
struct CLITests {
    final class Scratch {
        let directory: String
        var home: String { directory + "/home" }

        init() throws { directory = try TestSupport.makeTemporaryDirectory("cli") }
        deinit { TestSupport.remove(directory) }

        @discardableResult
        func vessel(_ arguments: String...) async throws -> TestSupport.ProcessResult {
            try await TestSupport.vessel(arguments, home: home)
        }

        /// A copy of the bundled example in `model/`, its vessel.yaml passed through `edit`.
        func example(_ edit: (String) -> String) throws -> (directory: String, yaml: String) {
            let model = directory + "/model"
            try TestSupport.copyExample(to: model)
            let yaml = edit(try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8))
            try TestSupport.write(yaml, to: model + "/vessel.yaml")
            return (model, yaml)
        }
    }

    @Test("pack prints the reference and digest, and stays quiet on a pipe")
    func packQuiet() async throws {
        let scratch = try Scratch()
        let result = try await scratch.vessel("pack", TestSupport.exampleDirectory)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.isEmpty, "progress leaked onto a pipe: \(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.first == "packed iris:1.0.0")
        #expect(lines.count == 3 && lines[1].hasPrefix("digest sha256:"), "\(lines)")
        #expect(lines.last?.hasPrefix("attached SLSA provenance and a CycloneDX SBOM") == true)
        let list = try await scratch.vessel("list")
        #expect(list.standardOutput.contains("iris:1.0.0"))
        let verify = try await scratch.vessel("verify", "iris:1.0.0")
        #expect(verify.status == 0)
        #expect(verify.standardOutput.contains("all digests match"))
    }

    @Test("on a terminal, pack draws progress with bytes, rate and completion")
    func progressOnTerminal() async throws {
        let scratch = try Scratch()
        // `script` runs the command on a pseudo-terminal and records what it printed.
        let command = "VESSEL_HOME='\(scratch.home)' '\(TestSupport.vesselBinary)' pack '\(TestSupport.exampleDirectory)'"
        let result = try await TestSupport.run("script", ["-qec", command, "/dev/null"])
        #expect(result.status == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("model.onnx  617 B / 617 B"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("/s"))
        #expect(result.standardOutput.contains("done in"))
        #expect(result.standardOutput.contains("packed iris:1.0.0"))
    }

    @Test("a bad manifest prints every problem with file:line:column and exits non-zero")
    func badManifest() async throws {
        let scratch = try Scratch()
        let (model, _) = try scratch.example {
            $0.replacingOccurrences(of: "      dtype: float32\n      shape: [batch, 4]", with: "      dtype: flaot32\n      shapes: [batch, 4]")
                .replacingOccurrences(of: "file: labels.txt", with: "file: label.txt")
        }
        for command in ["validate", "pack"] {
            let result = try await scratch.vessel(command, model)
            #expect(result.status == 1)
            #expect(result.standardOutput.isEmpty)
            #expect(result.standardError.contains("errors in the manifest"))
            #expect(result.standardError.contains("vessel.yaml:29:14: error: unknown dtype `flaot32`"), "\(result.standardError)")
            #expect(result.standardError.contains("did you mean `float32`?"))
            #expect(result.standardError.contains("unknown key `shapes`"))
            #expect(result.standardError.contains("`label.txt` does not exist"))
            // The broken input is not blamed again by every example that uses it.
            #expect(result.standardError.hasPrefix("3 errors in the manifest:"), "\(result.standardError)")
            #expect(!result.standardError.contains("which the signature does not have"))
        }
        #expect(try await scratch.vessel("list").standardOutput.contains("no artifacts"))
    }

    @Test("inspect shows the signature and files, as text and JSON")
    func inspect() async throws {
        let scratch = try Scratch()
        try await scratch.vessel("pack", TestSupport.exampleDirectory, "-t", "team/iris:prod")
        let text = try await scratch.vessel("inspect", "team/iris:prod")
        #expect(text.status == 0)
        #expect(text.standardOutput.contains("input  X  float32[batch, 4]"))
        #expect(text.standardOutput.contains("model.onnx"))
        // iris's labels step: the served signature has `species`, the model's does not.
        #expect(text.standardOutput.contains("served signature (what clients send and get):"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("output species  string[batch]"))
        #expect(text.standardOutput.contains("model signature (the graph's own"))
        let json = try await scratch.vessel("inspect", "team/iris:prod", "--json")
        let report = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
        #expect(report?["name"] as? String == "iris")
        #expect(report?["reference"] as? String == "team/iris:prod")
        let files = report?["files"] as? [[String: Any]]
        #expect(files?.map { $0["path"] as? String } == ["model.onnx", "labels.txt", "README.md", "vessel.yaml"])
        #expect((report?["outputs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["label", "probabilities", "species"])
        #expect((report?["modelOutputs"] as? [[String: Any]])?.map { $0["name"] as? String } == ["label", "probabilities"])
    }

    @Test("predict runs the whole pipeline on a directory and on a packed artifact, and names a bad input")
    func predict() async throws {
        let scratch = try Scratch()
        try await scratch.vessel("pack", TestSupport.exampleDirectory, "-t", "iris:1")
        for target in [TestSupport.exampleDirectory, "iris:1"] {
            let text = try await scratch.vessel("predict", target, "-i", "X=[[5.1,3.5,1.4,0.2],[6.3,3.3,6.0,2.5]]")
            #expect(text.status == 0, "\(text.standardError)")
            #expect(text.standardOutput.contains("species  string[2]\n[\"setosa\", \"virginica\"]"), "\(text.standardOutput)")
            let json = try await scratch.vessel("predict", target, "--input", "X=[[7.0,3.2,4.7,1.4]]", "--json")
            let body = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
            let outputs = body?["outputs"] as? [[String: Any]]
            #expect(outputs?.last?["data"] as? [String] == ["versicolor"], "\(json.standardOutput)")
        }
        let timed = try await scratch.vessel("predict", TestSupport.exampleDirectory, "-i", "X=[[5.1,3.5,1.4,0.2]]", "--repeat", "3")
        #expect(timed.status == 0 && timed.standardError.contains("predict: 3 runs, p50 "), "\(timed.standardError)")
        // A picture for the digits example, as a file.
        let digits = TestSupport.packageRoot + "/Examples/digits"
        let picture = try await scratch.vessel("predict", digits, "-i", "image=@\(digits)/examples/9.jpg")
        #expect(picture.status == 0 && picture.standardOutput.contains("[\"nine\"]"), "\(picture.standardOutput) \(picture.standardError)")
        let wrong = try await scratch.vessel("predict", TestSupport.exampleDirectory, "-i", "X=[[5.1,3.5,1.4]]")
        #expect(wrong.status == 1 && wrong.standardError.contains("input `X`: expected shape [batch, 4], got [1, 3]"), "\(wrong.standardError)")
        let unknown = try await scratch.vessel("predict", TestSupport.exampleDirectory, "-i", "Y=1")
        #expect(unknown.status == 1 && unknown.standardError.contains("has no input `Y`; its inputs are X"))
    }

    @Test("a processing step that does not fit the model is an error at its line and column, and nothing is packed")
    func stepDoesNotFit() async throws {
        let scratch = try Scratch()
        let (model, yaml) = try scratch.example { $0.replacingOccurrences(of: "postprocess:\n", with: "postprocess:\n  - {type: softmax, output: label}\n") }
        let line = yaml.components(separatedBy: "\n").firstIndex { $0.contains("type: softmax") }! + 1
        for command in ["validate", "pack"] {
            let result = try await scratch.vessel(command, model)
            #expect(result.status == 1)
            #expect(
                result.standardError.contains("vessel.yaml:\(line):5: error: postprocess step 1 (`softmax`): takes a floating-point tensor; `label` is int64"),
                "\(result.standardError)")
        }
        #expect(try await scratch.vessel("list").standardOutput.contains("no artifacts"))
    }

    @Test(
        "errors name what and where and exit non-zero",
        arguments: [
            (["inspect", "nothing:here"], "no artifact `nothing:here`"),
            (["verify", "Bad:Name"], "names are lowercase"),
            (["rm", "nothing:here"], "no artifact"),
            (["import", "/nonexistent.tar"], "/nonexistent.tar"),
            (["pack", "/nonexistent-dir"], "cannot read vessel.yaml"),
            (["export", "nothing:here", "-o", "/tmp/x.tar"], "no artifact")
        ])
    func errors(_ arguments: [String], _ message: String) async throws {
        let scratch = try Scratch()
        let result = try await TestSupport.vessel(arguments, home: scratch.home)
        #expect(result.status != 0)
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }

    @Test("verify fails on a tampered blob and names it")
    func verifyTampered() async throws {
        let scratch = try Scratch()
        try await scratch.vessel("pack", TestSupport.exampleDirectory)
        let store = try Store(root: scratch.home)
        let descriptor = try store.resolve(Reference(parsing: "iris:1.0.0"))
        let model = try store.closure(of: descriptor).first { $0.annotations?[OCIAnnotation.title] == "model.onnx" }!
        try TestSupport.flipByte(in: store.blobPath(model.digest), at: 100)
        let result = try await scratch.vessel("verify", "iris:1.0.0")
        #expect(result.status == 1)
        #expect(result.standardError.contains(model.digest.description))
        #expect(result.standardError.contains("model.onnx"))
        #expect(try await scratch.vessel("unpack", "iris:1.0.0", scratch.directory + "/out").status == 1)
    }

    @Test("export, import into an empty store, unpack, tag, rm and gc")
    func lifecycle() async throws {
        let scratch = try Scratch()
        try await scratch.vessel("pack", TestSupport.exampleDirectory)
        let archive = scratch.directory + "/iris.tar"
        #expect(try await scratch.vessel("export", "iris:1.0.0", "-o", archive).status == 0)
        #expect(try await TestSupport.run("skopeo", ["inspect", "--raw", "oci-archive:\(archive)"]).status == 0)
        let other = scratch.directory + "/other"
        let imported = try await TestSupport.vessel(["import", archive], home: other)
        #expect(imported.status == 0, "\(imported.standardError)")
        #expect(imported.standardOutput.hasPrefix("imported iris:1.0.0"))
        #expect(try await TestSupport.vessel(["verify", "iris:1.0.0"], home: other).status == 0)
        let out = scratch.directory + "/unpacked"
        #expect(try await TestSupport.vessel(["unpack", "iris:1.0.0", out], home: other).status == 0)
        #expect(try await TestSupport.run("diff", ["-r", TestSupport.exampleDirectory, out, "-x", "make_model.py"]).status == 0)
        let again = try await TestSupport.vessel(["unpack", "iris:1.0.0", out], home: other)
        #expect(again.status == 1)
        #expect(again.standardError.contains("--force"))
        #expect(try await scratch.vessel("tag", "iris:1.0.0", "iris:prod").status == 0)
        #expect(try await scratch.vessel("rm", "iris:1.0.0").standardOutput == "removed iris:1.0.0\n")
        #expect(try await scratch.vessel("gc").standardOutput.hasPrefix("removed 0 blob(s)"))
        #expect(try await scratch.vessel("rm", "iris:prod").status == 0)
        // The artifact's 6 blobs, and what pack attached: the provenance and the SBOM, their two
        // referrer manifests and the empty config those share.
        #expect(try await scratch.vessel("gc").standardOutput.hasPrefix("removed 11 blob(s)"))
    }

    @Test("kill -9 at any moment of a pack leaves no partial blob or tag, and the next pack works")
    func crashSafety() async throws {
        let scratch = try Scratch()
        // 256 MiB of weights, so a pack takes long enough to be interrupted in every phase.
        let model = try await FaultTests.bigModel(in: scratch.directory, megabytes: 256)
        // A tag that exists before the crashes must survive them.
        try await scratch.vessel("pack", TestSupport.exampleDirectory, "-t", "iris:before")

        for delay in [0.005, 0.05, 0.15, 0.3, 0.5, 0.8, 1.2] {
            try FaultTests.killed(["pack", model, "-t", "big:1"], home: scratch.home, after: delay)
            try Self.checkInvariants(home: scratch.home, after: delay)
        }
        let store = try Store(root: scratch.home)
        _ = try store.verify(store.resolve(Reference(parsing: "iris:before")))
        let pack = try await scratch.vessel("pack", model, "-t", "big:1")
        #expect(pack.status == 0, "\(pack.standardError)")
        #expect(try await scratch.vessel("verify", "big:1").status == 0)
        let gc = try await scratch.vessel("gc")
        #expect(gc.status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.home + "/tmp").isEmpty)
        #expect(try await scratch.vessel("verify", "big:1").status == 0)
    }

    /// Every visible blob is complete (its content hashes to its name) and every tag resolves to
    /// a manifest whose blobs are all present and intact.
    static func checkInvariants(home: String, after delay: Double) throws {
        guard FileManager.default.fileExists(atPath: home + "/index.json") else { return }
        let store = try Store(root: home)
        let blobs = (try? FileManager.default.contentsOfDirectory(atPath: home + "/blobs/sha256")) ?? []
        for name in blobs {
            let digest = try #require(Digest(hex: name), "stray file \(name) in blobs/ after kill at \(delay)s")
            let actual = try TestSupport.opensslDigest(store.blobPath(digest))
            #expect(actual == digest.description, "partial blob \(name) visible after kill at \(delay)s")
        }
        for entry in try store.list() {
            _ = try store.verify(entry.descriptor)
        }
    }
}
