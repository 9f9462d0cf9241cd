import Foundation
import Testing
import VesselArtifact
import VesselManifest
import VesselStore
import VesselTestSupport

@Suite("unpack")
struct UnpackTests {
    @Test("unpack writes back exactly the packed files")
    func roundTrip() throws {
        let workspace = try Workspace()
        let source = try workspace.model("m")
        let result = try workspace.pack(source)
        let artifact = try Artifact.load(result.reference, from: workspace.store)
        let target = workspace.directory + "/out"
        let written = try Unpacker(store: workspace.store).unpack(artifact, into: target)
        #expect(written.contains("src/bin/run.sh"))
        let diff = try TestSupport.run("diff", ["-r", "--no-dereference", source, target, "-x", "make_model.py"])
        #expect(diff.status == 0, "\(diff.standardOutput)")
        #expect(FileManager.default.isExecutableFile(atPath: target + "/src/bin/run.sh"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/src/current.py") == "predict.py")
        // A second unpack into the same place refuses to overwrite, unless asked to.
        #expect(throws: Unpacker.UnpackError.self) { try Unpacker(store: workspace.store).unpack(artifact, into: target) }
        try Unpacker(store: workspace.store, overwrite: true).unpack(artifact, into: target)
    }

    @Test("unpack never writes through a symlink in the target")
    func throughSymlink() throws {
        let workspace = try Workspace()
        let result = try workspace.pack(try workspace.model("m"))
        let artifact = try Artifact.load(result.reference, from: workspace.store)
        let target = workspace.directory + "/out"
        let outside = workspace.directory + "/outside"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: target + "/src", withDestinationPath: outside)
        #expect(
            performing: { try Unpacker(store: workspace.store, overwrite: true).unpack(artifact, into: target) },
            throws: { "\($0)".contains("symlink") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
    }

    /// An artifact built by hand, as a hostile producer would, with the given layers.
    static func forged(_ workspace: Workspace, layers: [(path: String, mediaType: String, content: [UInt8])]) throws -> Artifact {
        let yaml = """
            name: forged
            version: "1"
            model: {format: onnx, file: model.onnx}
            signature:
              inputs: [{name: x, dtype: float32, shape: [1]}]
              outputs: [{name: y, dtype: float32, shape: [1]}]

            """
        var descriptors: [Descriptor] = []
        for layer in layers {
            descriptors.append(
                try workspace.store.ingest(
                    layer.content, mediaType: layer.mediaType,
                    annotations: ["org.cncf.model.filepath": layer.path]))
        }
        descriptors.append(
            try workspace.store.ingest(
                Array("model".utf8), mediaType: "application/vnd.cncf.model.weight.v1.raw",
                annotations: ["org.cncf.model.filepath": "model.onnx"]))
        let manifestLayer = try workspace.store.ingest(
            Array(yaml.utf8), mediaType: "application/vnd.cncf.model.weight.config.v1.raw",
            annotations: ["org.cncf.model.filepath": "vessel.yaml"])
        descriptors.append(manifestLayer)
        let config = ModelConfig(
            descriptor: .init(), config: .init(),
            modelfs: .init(type: "layers", diffIds: descriptors.map(\.digest.description)))
        let configDescriptor = try workspace.store.ingest(Array(CanonicalJSON.encode(config)), mediaType: ModelPack.configMediaType)
        let manifest = ImageManifest(
            artifactType: ModelPack.artifactType, config: configDescriptor, layers: descriptors,
            annotations: ["dev.vessel.manifest": manifestLayer.digest.description])
        let descriptor = try workspace.store.ingest(Array(CanonicalJSON.encode(manifest)), mediaType: OCIMediaType.imageManifest)
        let reference = try Reference(parsing: "forged:\(UUID().uuidString.prefix(8).lowercased())")
        try workspace.store.tag(descriptor, as: reference)
        return try Artifact.load(reference, from: workspace.store)
    }

    static func tar(_ entries: [(String, TarWriter.EntryKind, [UInt8])]) throws -> [UInt8] {
        try TestSupport.tarBytes(entries)
    }

    @Test(
        "hostile paths in an artifact are refused and nothing lands outside",
        arguments: [
            "raw-parent", "raw-absolute", "tar-parent", "tar-outside-layer", "tar-symlink-escape", "tar-hardlink"
        ])
    func hostile(_ kind: String) throws {
        let workspace = try Workspace()
        let raw = "application/vnd.cncf.model.doc.v1.raw", tarType = "application/vnd.cncf.model.code.v1.tar"
        let evil = Array("evil".utf8)
        let file = TarWriter.EntryKind.file(size: 4, executable: false)
        let layer: (path: String, mediaType: String, content: [UInt8]) =
            switch kind {
            case "raw-parent": ("../escape.txt", raw, evil)
            case "raw-absolute": (workspace.directory + "/escape.txt", raw, evil)
            case "tar-parent": ("code", tarType, try Self.tar([("code/../../escape.txt", file, evil)]))
            case "tar-outside-layer": ("code", tarType, try Self.tar([("other/escape.txt", file, evil)]))
            case "tar-symlink-escape": ("code", tarType, try Self.tar([("code/link", .symlink(target: "../../escape.txt"), [])]))
            default: ("code", tarType, try Self.tar([("code/hard", .file(size: 0, executable: false), [])].map { $0 } + []))
            }
        var artifact = try Self.forged(workspace, layers: [layer])
        if kind == "tar-hardlink" {
            // A hard link entry written by hand: typeflag 1.
            var bytes = try Self.tar([("code/hard", .symlink(target: "/etc/passwd"), [])])
            bytes[156] = UInt8(ascii: "1")
            var sum = 0
            for (index, byte) in bytes.prefix(512).enumerated() { sum += (148..<156).contains(index) ? 32 : Int(byte) }
            let digits = Array(String(sum, radix: 8).utf8)
            for index in 148..<156 { bytes[index] = 0 }
            for (offset, digit) in digits.enumerated() { bytes[148 + 6 - digits.count + offset] = digit }
            for index in 148..<(148 + 6 - digits.count) { bytes[index] = UInt8(ascii: "0") }
            bytes[155] = UInt8(ascii: " ")
            artifact = try Self.forged(workspace, layers: [("code", tarType, bytes)])
        }
        let target = workspace.directory + "/deep/out"
        #expect(throws: Unpacker.UnpackError.self) { try Unpacker(store: workspace.store).unpack(artifact, into: target) }
        #expect(!FileManager.default.fileExists(atPath: workspace.directory + "/deep/escape.txt"))
        #expect(!FileManager.default.fileExists(atPath: workspace.directory + "/escape.txt"))
    }

    @Test("a corrupt blob leaves no file behind")
    func corruptBlob() throws {
        let workspace = try Workspace()
        let result = try workspace.pack(try workspace.model("m"))
        let artifact = try Artifact.load(result.reference, from: workspace.store)
        let labels = try #require(artifact.files.first { $0.path == "labels.txt" })
        try TestSupport.flipByte(in: workspace.store.blobPath(labels.descriptor.digest), at: 2)
        let target = workspace.directory + "/out"
        #expect(
            performing: { try Unpacker(store: workspace.store).unpack(artifact, into: target) },
            throws: { "\($0)".contains(labels.descriptor.digest.description) })
        #expect(!FileManager.default.fileExists(atPath: target + "/labels.txt"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: target).filter { $0.hasPrefix(".vessel-unpack") }
        #expect(leftovers.isEmpty)
    }

    @Test("in place: a picked single-file layer is located in its blob and not written; others unpack as always")
    func inPlace() throws {
        let workspace = try Workspace()
        let source = try workspace.model("m")
        let artifact = try Artifact.load(try workspace.pack(source).reference, from: workspace.store)
        let target = workspace.directory + "/out"
        let unpacker = Unpacker(store: workspace.store, overwrite: true, durable: false)
        let picked: Set<String> = ["model.onnx", "labels.txt", "src"]
        let inPlace = unpacker.inPlaceFiles(artifact) { _, path in picked.contains(path) }
        let written = try unpacker.unpack(artifact, into: target, except: inPlace)
        // `src` holds several files, so it is extracted.
        #expect(Set(inPlace.keys) == ["model.onnx", "labels.txt"])
        #expect(!written.contains("model.onnx") && written.contains("src/bin/run.sh"))
        #expect(!FileManager.default.fileExists(atPath: target + "/model.onnx"))
        for (path, found) in inPlace {
            let blob = try #require(FileManager.default.contents(atPath: found.blobPath))
            let original = try #require(FileManager.default.contents(atPath: source + "/" + path))
            #expect(found.offset >= 512 && blob[Int(found.offset)..<Int(found.offset + found.size)] == original, "\(path)")
        }
        let diff = try TestSupport.run("diff", ["-r", "--no-dereference", source, target, "-x", "make_model.py", "-x", "model.onnx", "-x", "labels.txt"])
        #expect(diff.status == 0, "\(diff.standardOutput)")

        // A raw layer is in place from offset 0.
        let forged = try Self.forged(workspace, layers: [])
        let raw = unpacker.inPlaceFiles(forged) { _, _ in true }
        #expect(raw["model.onnx"]?.offset == 0 && raw["model.onnx"]?.size == 5)

        // A blob of the wrong size is not left in place: it is unpacked, and its check refuses it.
        let labels = try #require(artifact.files.first { $0.path == "labels.txt" })
        #expect(truncate(workspace.store.blobPath(labels.descriptor.digest), 1000) == 0)
        let other = workspace.directory + "/other"
        let shortened = unpacker.inPlaceFiles(artifact) { _, path in picked.contains(path) }
        #expect(Set(shortened.keys) == ["model.onnx"])
        #expect(
            performing: { try unpacker.unpack(artifact, into: other, except: shortened) },
            throws: { "\($0)".contains(labels.descriptor.digest.description) })
        #expect(!FileManager.default.fileExists(atPath: other + "/labels.txt"))
    }
}
