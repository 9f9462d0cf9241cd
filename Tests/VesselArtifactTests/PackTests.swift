import Foundation
import Testing
import VesselArtifact
import VesselManifest
import VesselStore
import VesselTestSupport

/// A scratch area with a store, removed when the test ends.
final class Workspace {
    let directory: String
    let store: Store

    init() throws {
        directory = try TestSupport.makeTemporaryDirectory("artifact")
        store = try Store(root: directory + "/home")
    }

    deinit { TestSupport.remove(directory) }

    /// The bundled example plus a `src/` directory (nested files, an executable, an inner
    /// symlink) packed as code, copied to `name`.
    func model(_ name: String) throws -> String {
        let path = directory + "/" + name
        try TestSupport.copyExample(to: path)
        try TestSupport.write("def predict(x):\n    return x\n", to: path + "/src/predict.py")
        try TestSupport.write("#!/bin/sh\necho hi\n", to: path + "/src/bin/run.sh")
        try TestSupport.write("{}", to: path + "/src/config/empty.json")
        chmod(path + "/src/bin/run.sh", 0o755)
        try FileManager.default.createSymbolicLink(atPath: path + "/src/current.py", withDestinationPath: "predict.py")
        var yaml = try String(contentsOfFile: path + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(
            of: "  - path: README.md\n    role: doc\n", with: "  - path: README.md\n    role: doc\n  - path: src\n    role: code\n")
        try TestSupport.write(yaml, to: path + "/vessel.yaml")
        return path
    }

    func pack(_ path: String, store: Store? = nil, tag: String? = nil) throws -> Packer.Result {
        try Packer(store: store ?? self.store).pack(directory: path, reference: try tag.map { try Reference(parsing: $0) })
    }

    var blobNames: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/blobs/sha256").sorted()) ?? []
    }
}

@Suite("pack")
struct PackTests {
    @Test("the same model packed from two places, owners, times and umasks has one digest")
    func reproducible() throws {
        let workspace = try Workspace()
        let first = try workspace.model("first")
        let second = try workspace.model("elsewhere/deeper/second")
        // Make the second copy differ in everything but content.
        let files = try FileManager.default.subpathsOfDirectory(atPath: second)
        for file in files {
            let path = second + "/" + file
            var info = stat()
            lstat(path, &info)
            if info.st_mode & S_IFMT == S_IFLNK { continue }
            var times = [timespec(tv_sec: 1_700_000_000 + Int(file.count), tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 5)]
            utimensat(AT_FDCWD, path, &times, 0)
            chown(path, 65534, 65534)
            if info.st_mode & S_IFMT == S_IFREG { chmod(path, info.st_mode & 0o111 != 0 ? 0o775 : 0o664) }
        }
        let otherStore = try Store(root: workspace.directory + "/other-home")
        let a = try workspace.pack(first)
        let previous = umask(0o077)
        defer { umask(previous) }
        let b = try workspace.pack(second, store: otherStore)
        #expect(a.manifest.digest == b.manifest.digest)
        #expect(a.layers == b.layers)
        #expect(a.reference.description == "iris:1.0.0")
    }

    @Test("the artifact follows ModelPack: artifact type, config, a layer per file with its path")
    func modelPackStructure() throws {
        let workspace = try Workspace()
        let result = try workspace.pack(try workspace.model("m"))
        let data = try workspace.store.readBlob(result.manifest, context: "manifest")
        let manifest = try JSONDecoder().decode(ImageManifest.self, from: data)
        #expect(manifest.mediaType == "application/vnd.oci.image.manifest.v1+json")
        #expect(manifest.artifactType == "application/vnd.cncf.model.manifest.v1+json")
        #expect(manifest.config.mediaType == "application/vnd.cncf.model.config.v1+json")
        let layers = manifest.layers.map { ($0.annotations?["org.cncf.model.filepath"] ?? "?", $0.mediaType) }
        #expect(layers.map(\.0) == ["model.onnx", "labels.txt", "README.md", "src", "vessel.yaml"])
        #expect(
            layers.map(\.1) == [
                "application/vnd.cncf.model.weight.v1.tar",
                "application/vnd.cncf.model.weight.config.v1.tar",
                "application/vnd.cncf.model.doc.v1.tar",
                "application/vnd.cncf.model.code.v1.tar",
                "application/vnd.cncf.model.weight.config.v1.tar"
            ])
        #expect(manifest.annotations?["dev.vessel.manifest"] == manifest.layers.last?.digest.description)
        #expect(manifest.annotations?["org.opencontainers.image.created"] == nil)
        let config = try JSONDecoder().decode(ModelConfig.self, from: workspace.store.readBlob(manifest.config, context: "config"))
        #expect(config.modelfs.type == "layers")
        #expect(config.modelfs.diffIds == manifest.layers.map(\.digest.description))
        #expect(config.descriptor.name == "iris")
        #expect(config.config.format == "onnx")
        // The model file is stored byte for byte, as the one entry of a tar GNU tar extracts.
        let model = try #require(manifest.layers.first)
        let extracted = workspace.directory + "/extracted"
        try FileManager.default.createDirectory(atPath: extracted, withIntermediateDirectories: true)
        let untar = try TestSupport.run("tar", ["-xf", workspace.store.blobPath(model.digest), "-C", extracted])
        #expect(untar.status == 0, "\(untar.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: extracted) == ["model.onnx"])
        #expect(try TestSupport.opensslDigest(extracted + "/model.onnx") == (try TestSupport.opensslDigest(TestSupport.exampleDirectory + "/model.onnx")))
        // The code layer is a tar that GNU tar lists, with paths from the model root.
        let code = manifest.layers[3]
        let listing = try TestSupport.run("tar", ["-tvf", workspace.store.blobPath(code.digest)])
        #expect(listing.standardOutput.contains("src/bin/run.sh"))
        #expect(listing.standardOutput.contains("src/current.py -> predict.py"))
        #expect(!listing.standardOutput.contains("nobody"))
        // skopeo reads the artifact from the store.
        let inspect = try TestSupport.run("skopeo", ["inspect", "--raw", "oci:\(workspace.store.root):iris:1.0.0"])
        #expect(inspect.status == 0, "\(inspect.standardError)")
        #expect(inspect.standardOutput.contains("application/vnd.cncf.model.manifest.v1+json"))
    }

    @Test("a new version stores only what changed")
    func dedupe() throws {
        let workspace = try Workspace()
        let path = try workspace.model("m")
        let first = try workspace.pack(path)
        let before = Set(workspace.blobNames)
        var yaml = try String(contentsOfFile: path + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "version: 1.0.0", with: "version: 1.0.1")
        try TestSupport.write(yaml, to: path + "/vessel.yaml")
        let second = try workspace.pack(path)
        let added = Set(workspace.blobNames).subtracting(before)
        #expect(second.reference.description == "iris:1.0.1")
        #expect(added.count == 3)  // vessel.yaml, config, manifest
        #expect(Array(first.layers.prefix(4)) == Array(second.layers.prefix(4)))
    }

    @Test("a packed file with the same bytes as vessel.yaml is still a file of the artifact")
    func fileEqualToManifest() throws {
        let workspace = try Workspace()
        let path = try workspace.model("m")
        var yaml = try String(contentsOfFile: path + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: "  - path: README.md\n", with: "  - path: manifest-copy.yaml\n    role: doc\n  - path: README.md\n")
        try TestSupport.write(yaml, to: path + "/vessel.yaml")
        try FileManager.default.copyItem(atPath: path + "/vessel.yaml", toPath: path + "/manifest-copy.yaml")
        let result = try workspace.pack(path)
        let artifact = try Artifact.load(result.reference, from: workspace.store)
        #expect(artifact.files.map(\.path).contains("manifest-copy.yaml"))
        let out = workspace.directory + "/out"
        try Unpacker(store: workspace.store).unpack(artifact, into: out)
        #expect(FileManager.default.contentsEqual(atPath: out + "/manifest-copy.yaml", andPath: out + "/vessel.yaml"))
    }

    @Test("an invalid manifest stores nothing")
    func invalidStoresNothing() throws {
        let workspace = try Workspace()
        let path = try workspace.model("m")
        try TestSupport.write("name: Iris\n", to: path + "/vessel.yaml")
        #expect(throws: ManifestValidationError.self) { try workspace.pack(path) }
        #expect(workspace.blobNames.isEmpty)
        #expect(try workspace.store.list().isEmpty)
    }

    @Test("a symlink inside a code directory that leads outside is refused")
    func escapingSymlink() throws {
        let workspace = try Workspace()
        let path = try workspace.model("m")
        try FileManager.default.createSymbolicLink(atPath: path + "/src/passwd", withDestinationPath: "../../../../etc/passwd")
        #expect { try workspace.pack(path) } throws: { "\($0)".contains("leads outside the model directory") }
        #expect(try workspace.store.list().isEmpty)
    }
}

@Suite("load and verify")
struct LoadTests {
    @Test("a packed artifact loads with its manifest, config and files")
    func load() throws {
        let workspace = try Workspace()
        let result = try workspace.pack(try workspace.model("m"))
        let artifact = try Artifact.load(result.reference, from: workspace.store)
        #expect(artifact.manifest.name == "iris")
        #expect(artifact.files.map(\.path) == ["model.onnx", "labels.txt", "README.md", "src"])
        #expect(artifact.files.map(\.packing) == [.tar, .tar, .tar, .tar])
        #expect(artifact.manifestText == (try String(contentsOfFile: workspace.directory + "/m/vessel.yaml", encoding: .utf8)))
        let byDigest = try Artifact.load(try Reference(parsing: "iris@\(result.manifest.digest)"), from: workspace.store)
        #expect(byDigest.descriptor.digest == result.manifest.digest)
    }

    @Test("one flipped byte in any blob fails verify and load, naming that blob")
    func tamperDetection() throws {
        let workspace = try Workspace()
        let result = try workspace.pack(try workspace.model("m"))
        let blobs = try workspace.store.closure(of: result.manifest)
        #expect(blobs.count == 7)  // manifest, config, 5 layers
        for blob in blobs {
            let path = workspace.store.blobPath(blob.digest)
            try TestSupport.flipByte(in: path, at: UInt64(blob.size / 2))
            #expect(performing: { _ = try workspace.store.verify(result.manifest) }, throws: { "\($0)".contains(blob.digest.description) })
            #expect(performing: { _ = try Artifact.load(result.reference, from: workspace.store) }, throws: { "\($0)".contains(blob.digest.description) })
            try TestSupport.flipByte(in: path, at: UInt64(blob.size / 2))
        }
        _ = try Artifact.load(result.reference, from: workspace.store)
    }

    @Test("something that is not a model artifact is refused")
    func notAModel() throws {
        let workspace = try Workspace()
        let config = try workspace.store.ingest(Array("{}".utf8), mediaType: OCIMediaType.imageConfig)
        let manifest = ImageManifest(artifactType: nil, config: config, layers: [], annotations: nil)
        let descriptor = try workspace.store.ingest(Array(CanonicalJSON.encode(manifest)), mediaType: OCIMediaType.imageManifest)
        try workspace.store.tag(descriptor, as: Reference(parsing: "image:1"))
        #expect(
            performing: { _ = try Artifact.load(try Reference(parsing: "image:1"), from: workspace.store) },
            throws: { "\($0)".contains("is not a model artifact") })
    }
}
