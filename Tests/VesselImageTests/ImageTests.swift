import Foundation
import Testing
import VesselArtifact
import VesselManifest
import VesselModel
@testable import VesselImage
import VesselStore
import VesselTestSupport

/// A scratch store with the bundled example packed in it.
final class ImageWorkspace {
    let directory: String
    let store: Store
    let artifact: Artifact

    init() throws {
        directory = try TestSupport.makeTemporaryDirectory("image")
        store = try Store(root: directory + "/home")
        let result = try Packer(store: store).pack(directory: TestSupport.exampleDirectory)
        artifact = try Artifact.load(result.reference, from: store)
    }

    deinit { TestSupport.remove(directory) }

    /// A small dynamic binary stands in for vessel where only the image's structure matters.
    func build(tag: String? = "iris-image:1.0.0", binary: String = "/usr/bin/true") throws -> ImageBuilder.Result {
        try ImageBuilder(store: store).build(artifact, tag: try tag.map { try Reference(parsing: $0) }, options: .init(binary: binary))
    }

    func json(_ descriptor: Descriptor) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: store.readBlob(descriptor, context: "test")) as? [String: Any])
    }
}

@Suite("ELF and shared libraries")
struct SharedLibraryTests {
    @Test("the interpreter and DT_NEEDED of a system binary")
    func readsELF() throws {
        let elf = try ELFFile(path: "/usr/bin/true")
        #expect(elf.interpreter == "/lib64/ld-linux-x86-64.so.2")
        #expect(elf.needed == ["libc.so.6"])
        #expect(elf.machine == 62)
        let libc = try ELFFile(path: try SharedLibraries.realPath("/lib/x86_64-linux-gnu/libc.so.6"))
        #expect(libc.soname == "libc.so.6")
    }

    @Test("vessel's closure holds its ELF dependencies and the BLAS it loads at run time, each a real file")
    func closure() throws {
        let libraries = try SharedLibraries.resolve(binary: TestSupport.vesselBinary, dlopened: [["libnothere.so.9", "libopenblas.so.0"]])
        let names = Set(libraries.libraries.map(\.name))
        #expect(names.isSuperset(of: ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1", "libopenblas.so.0", "libgfortran.so.5"]))
        #expect(!names.contains("libnothere.so.9"))
        #expect(libraries.interpreter?.requested == "/lib64/ld-linux-x86-64.so.2")
        for library in libraries.libraries {
            #expect(FileManager.default.fileExists(atPath: library.path))
            #expect(try ELFFile(path: library.path).machine == 62)
        }
        // What ldd (the loader itself) lists is a subset of what was found.
        let ldd = try TestSupport.run("ldd", [TestSupport.vesselBinary])
        for line in ldd.standardOutput.split(separator: "\n") {
            guard let name = line.split(separator: " ").first.map({ String($0.trimmingCharacters(in: .whitespaces)) }), line.contains("=>") else { continue }
            #expect(names.contains(name), "ldd lists \(name)")
        }
    }

    @Test("a file that is not ELF, or is cut short, is refused with its path")
    func notELF() throws {
        #expect { try ELFFile(path: TestSupport.exampleDirectory + "/vessel.yaml") } throws: { "\($0)".contains("vessel.yaml is not an ELF file") }
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "/usr/bin/true")))
        for length in [10, 64, 100, 1000] {
            #expect(throws: ELFFile.FormatError.self, "\(length) bytes") { try ELFFile(bytes: Array(bytes.prefix(length)), path: "cut") }
        }
        // A program header table pointing far outside the file is an error, not a crash.
        var hostile = bytes
        for index in 32..<40 { hostile[index] = 0xFF }
        #expect(throws: ELFFile.FormatError.self) { try ELFFile(bytes: hostile, path: "hostile") }
    }
}

@Suite("gzip")
struct GzipTests {
    func compress(_ bytes: [UInt8], level: Int32 = 6) throws -> [UInt8] {
        var out: [UInt8] = []
        let gzip = try GzipWriter(level: level) { out.append(contentsOf: $0) }
        // In uneven chunks, as a tar stream arrives.
        var offset = 0, step = 1
        while offset < bytes.count {
            let end = min(bytes.count, offset + step)
            try bytes[offset..<end].withUnsafeBytes { try gzip.write($0) }
            offset = end
            step = step * 7 % 300_001 + 1
        }
        try gzip.finish()
        return out
    }

    func decompress(_ bytes: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let reader = try GzipReader(context: "test") { out.append(contentsOf: $0) }
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 4093)
            try bytes[offset..<end].withUnsafeBytes { try reader.write($0) }
            offset = end
        }
        try reader.finish()
        return out
    }

    @Test("round trip, and gzip(1) reads what we write and we read what it writes")
    func roundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        let random = (0..<1_500_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let text = Array(String(repeating: "tensor data compresses well ", count: 200_000).utf8)
        let input = random + text
        let compressed = try compress(input)
        #expect(compressed.count < input.count)
        #expect(try decompress(compressed) == input)
        #expect(try compress(input) == compressed, "the same input gives the same bytes")

        let directory = try TestSupport.makeTemporaryDirectory("gzip")
        defer { TestSupport.remove(directory) }
        _ = FileManager.default.createFile(atPath: directory + "/ours.gz", contents: Data(compressed))
        _ = FileManager.default.createFile(atPath: directory + "/input", contents: Data(input))
        _ = FileManager.default.createFile(atPath: directory + "/plain", contents: Data(text))
        let ours = try TestSupport.run("sh", ["-c", "gzip -t ours.gz && gzip -dc ours.gz | openssl dgst -sha256 -r"], currentDirectory: directory)
        let expected = try TestSupport.run("sh", ["-c", "openssl dgst -sha256 -r < input"], currentDirectory: directory)
        #expect(ours.status == 0, "\(ours.standardError)")
        #expect(ours.standardOutput.prefix(64) == expected.standardOutput.prefix(64))
        // Two members in a row, as `cat a.gz b.gz` makes, read as one stream.
        #expect(try TestSupport.run("sh", ["-c", "gzip -c plain > theirs.gz && gzip -c plain >> theirs.gz"], currentDirectory: directory).status == 0)
        let theirs = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/theirs.gz")))
        #expect(try decompress(theirs) == text + text)
    }

    @Test("truncated or corrupt gzip is an error, never silent")
    func corrupt() throws {
        let compressed = try compress(Array(String(repeating: "abc", count: 100_000).utf8))
        #expect { try decompress(Array(compressed.prefix(compressed.count / 2))) } throws: { "\($0)".contains("ends early") }
        var flipped = compressed
        flipped[flipped.count / 2] ^= 0xFF
        #expect(throws: (any Error).self) { try decompress(flipped) }
        #expect(throws: (any Error).self) { try decompress(Array("not gzip at all".utf8)) }
    }
}

@Suite("vessel image")
struct ImageBuildTests {
    @Test("the image reuses the artifact's blobs, is reproducible, and says how to run it")
    func structure() throws {
        let workspace = try ImageWorkspace()
        let first = try workspace.build()
        let second = try workspace.build(tag: nil)
        #expect(first.manifest.digest == second.manifest.digest)
        // The second build found the runtime layer by its content; without the blob it is rebuilt, the same.
        #expect(FileManager.default.fileExists(atPath: workspace.store.root + "/runtime-layers.json"))
        try FileManager.default.removeItem(atPath: workspace.store.blobPath(first.runtimeLayer.digest))
        #expect(try workspace.build(tag: nil).manifest.digest == first.manifest.digest)
        #expect(workspace.store.hasBlob(first.runtimeLayer.digest))

        let manifest = try workspace.json(first.manifest)
        #expect(manifest["mediaType"] as? String == "application/vnd.oci.image.manifest.v1+json")
        #expect(manifest["artifactType"] == nil)
        let layers = try #require(manifest["layers"] as? [[String: Any]])
        #expect(layers.count == workspace.artifact.imageManifest.layers.count + 2)
        #expect(layers.first?["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar+gzip")
        // The model layers are the artifact's blobs: same digests, as image layers.
        let modelDigests = layers.dropFirst().dropLast().map { $0["digest"] as? String }
        #expect(modelDigests == workspace.artifact.imageManifest.layers.map(\.digest.description))
        #expect(layers.dropFirst().allSatisfy { $0["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar" })

        let config = try workspace.json(
            try #require(try JSONDecoder().decode(ImageManifest.self, from: workspace.store.readBlob(first.manifest, context: "m")).config as Descriptor?))
        #expect(config["architecture"] as? String == "amd64")
        #expect(config["os"] as? String == "linux")
        #expect(config["created"] as? String == "1970-01-01T00:00:00Z")
        let settings = try #require(config["config"] as? [String: Any])
        #expect(settings["Entrypoint"] as? [String] == ["/vessel/bin/vessel", "serve", "--verify-files", "/vessel/model.json", "/"])
        #expect(settings["User"] as? String == "65532:65532")
        #expect((settings["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["8080/tcp"])
        let env = try #require(settings["Env"] as? [String])
        #expect(env.contains("VESSEL_HOST=0.0.0.0") && env.contains("VESSEL_PORT=8080"))
        let labels = try #require(settings["Labels"] as? [String: String])
        #expect(labels["org.opencontainers.image.title"] == "iris")
        #expect(labels["org.opencontainers.image.version"] == "1.0.0")
        #expect(labels["org.opencontainers.image.created"] == "1970-01-01T00:00:00Z")
        #expect(labels["dev.vessel.artifact"] == workspace.artifact.descriptor.digest.description)
        let health = try #require(settings["Healthcheck"] as? [String: Any])
        #expect(health["Test"] as? [String] == ["CMD", "/vessel/bin/vessel", "health"])
        let diffIDs = try #require((config["rootfs"] as? [String: Any])?["diff_ids"] as? [String])
        #expect(diffIDs.count == layers.count)
        #expect(Array(diffIDs.dropFirst()) == layers.dropFirst().map { $0["digest"] as? String ?? "" })
    }

    @Test("skopeo and umoci accept the archive, and our unpacker gives the same root filesystem")
    func outsideTools() throws {
        let workspace = try ImageWorkspace()
        let result = try workspace.build()
        let archive = workspace.directory + "/image.tar"
        try workspace.store.exportArchive(result.manifest, refName: "1.0.0", to: archive)
        let copy = try TestSupport.run("skopeo", ["copy", "oci-archive:\(archive)", "oci:\(workspace.directory)/layout:1.0.0"])
        #expect(copy.status == 0, "\(copy.standardError)")
        // The same archive is a docker-archive too (Docker's manifest.json beside the OCI layout).
        let docker = try TestSupport.run("skopeo", ["inspect", "docker-archive:\(archive)"])
        #expect(docker.status == 0, "\(docker.standardError)")
        #expect(docker.standardOutput.contains("\"dev.vessel.artifact\""), "\(docker.standardOutput)")
        let unpack = try TestSupport.run("umoci", ["unpack", "--rootless", "--image", "\(workspace.directory)/layout:1.0.0", "\(workspace.directory)/bundle"])
        #expect(unpack.status == 0, "\(unpack.standardError)")
        let theirs = workspace.directory + "/bundle/rootfs"
        let ours = workspace.directory + "/ours"
        try RootFilesystem.load(result.manifest, from: workspace.store).unpack(from: workspace.store, into: ours)
        let theirFiles = try FileManager.default.subpathsOfDirectory(atPath: theirs).sorted()
        let ourFiles = try FileManager.default.subpathsOfDirectory(atPath: ours).sorted()
        #expect(ourFiles == theirFiles)
        for path in ["model.onnx", "vessel.yaml", "vessel/bin/vessel", "vessel/model.json", "vessel/lib/libc.so.6", "lib64/ld-linux-x86-64.so.2", "etc/passwd"]
        {
            #expect(ourFiles.contains(path), "\(path)")
            #expect(try TestSupport.opensslDigest(ours + "/" + path) == (try TestSupport.opensslDigest(theirs + "/" + path)), "\(path)")
        }
        #expect(try TestSupport.opensslDigest(ours + "/model.onnx") == (try TestSupport.opensslDigest(TestSupport.exampleDirectory + "/model.onnx")))
        var info = stat()
        stat(ours + "/tmp", &info)
        #expect(info.st_mode & 0o7777 == 0o1777)
        // The file index checks the unpacked model, and names a changed file.
        let index = try JSONDecoder().decode(UnpackedFileIndex.self, from: Data(contentsOf: URL(fileURLWithPath: ours + "/vessel/model.json")))
        try index.verify(root: ours)
        // It carries the manifest, so the runtime binary needs no YAML parser.
        #expect(index.manifest?.name == index.name && index.manifest?.version == index.version)
        #expect(index.manifest?.signature.inputs.isEmpty == false)
        try TestSupport.write("changed", to: ours + "/labels.txt")
        #expect { try index.verify(root: ours) } throws: { "\($0)".contains("labels.txt does not match the artifact") }
    }

    @Test("a model file that would land on the image's own files is refused")
    func reservedPath() throws {
        let directory = try TestSupport.makeTemporaryDirectory("reserved")
        defer { TestSupport.remove(directory) }
        let model = try TestSupport.copyExample(to: directory + "/m")
        try TestSupport.write("x", to: model + "/vessel/notes.txt")
        var yaml = try String(contentsOfFile: model + "/vessel.yaml", encoding: .utf8)
        yaml = yaml.replacingOccurrences(
            of: "  - path: README.md\n    role: doc\n", with: "  - path: README.md\n    role: doc\n  - path: vessel/notes.txt\n    role: doc\n")
        try TestSupport.write(yaml, to: model + "/vessel.yaml")
        let store = try Store(root: directory + "/home")
        let packed = try Packer(store: store).pack(directory: model)
        let artifact = try Artifact.load(packed.reference, from: store)
        #expect { try ImageBuilder(store: store).build(artifact, tag: nil, options: .init(binary: "/usr/bin/true")) } throws: {
            "\($0)".contains("model file `vessel/notes.txt` would land on the image's own files")
        }
    }
}

@Suite("root filesystem")
struct RootFilesystemTests {
    /// Stores tar layers and an image config over them; returns the manifest.
    func image(_ layers: [[(String, TarWriter.EntryKind, [UInt8])]], store: Store) throws -> Descriptor {
        var descriptors: [Descriptor] = []
        for entries in layers {
            descriptors.append(try store.ingest(try TestSupport.tarBytes(entries), mediaType: OCIMediaType.layerTar))
        }
        let config = ImageConfig(
            created: nil, architecture: "amd64", os: "linux", config: nil,
            rootfs: .init(type: "layers", diffIDs: descriptors.map(\.digest.description)), history: nil)
        let configDescriptor = try store.ingest(Array(CanonicalJSON.encode(config)), mediaType: OCIMediaType.imageConfig)
        return try store.ingest(
            Array(CanonicalJSON.encode(ImageManifest(artifactType: nil, config: configDescriptor, layers: descriptors, annotations: nil))),
            mediaType: OCIMediaType.imageManifest)
    }

    @Test("whiteouts and opaque directories hide what lower layers put there")
    func whiteouts() throws {
        let directory = try TestSupport.makeTemporaryDirectory("rootfs")
        defer { TestSupport.remove(directory) }
        let store = try Store(root: directory + "/home")
        let manifest = try image(
            [
                [
                    ("a", .directory, []), ("a/keep", .file(size: 1, executable: false), [1]), ("a/drop", .file(size: 1, executable: false), [2]),
                    ("b", .directory, []), ("b/old", .file(size: 1, executable: false), [3])
                ],
                [
                    ("./a/.wh.drop", .file(size: 0, executable: false), []), ("b/.wh..wh..opq", .file(size: 0, executable: false), []),
                    ("b/new", .file(size: 1, executable: false), [4]), ("a/keep", .file(size: 2, executable: true), [5, 6])
                ]
            ], store: store)
        let root = directory + "/root"
        try RootFilesystem.load(manifest, from: store).unpack(from: store, into: root)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: root).sorted() == ["a", "a/keep", "b", "b/new"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: root + "/a/keep")) == Data([5, 6]))
        #expect(FileManager.default.isExecutableFile(atPath: root + "/a/keep"))
    }

    @Test("entries that climb out or write through a symlink are refused")
    func hostile() throws {
        let directory = try TestSupport.makeTemporaryDirectory("rootfs")
        defer { TestSupport.remove(directory) }
        let store = try Store(root: directory + "/home")
        let climbing = try image([[("../escape", .file(size: 1, executable: false), [1])]], store: store)
        #expect { try RootFilesystem.load(climbing, from: store).unpack(from: store, into: directory + "/r1") } throws: { "\($0)".contains("climbs out") }
        let throughLink = try image([[("link", .symlink(target: "/"), []), ("link/etc/evil", .file(size: 1, executable: false), [1])]], store: store)
        #expect { try RootFilesystem.load(throughLink, from: store).unpack(from: store, into: directory + "/r2") } throws: { "\($0)".contains("symlink") }
        #expect(!FileManager.default.fileExists(atPath: "/etc/evil"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/escape"))
    }
}
