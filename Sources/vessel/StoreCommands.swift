import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the artifacts in the store.", aliases: ["ls"])

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let entries = try store.list()
            var rows = [["REFERENCE", "DIGEST", "TYPE", "SIZE"]]
            for entry in entries {
                var size: Int64 = entry.descriptor.size
                if let data = try? store.readBlob(entry.descriptor, context: "manifest"),
                   let manifest = try? JSONDecoder().decode(ImageManifest.self, from: data) {
                    size = manifest.layers.reduce(0) { $0 + $1.size }
                }
                let type = entry.descriptor.artifactType == ModelPack.artifactType ? "model" : (entry.descriptor.artifactType ?? "image")
                rows.append([entry.refName, entry.descriptor.digest.short, type, ProgressBar.bytes(size)])
            }
            if entries.isEmpty {
                print("no artifacts in \(store.root) (pack one with `vessel pack DIR`)")
            } else {
                printTable(rows)
            }
        }
    }
}

func printTable(_ rows: [[String]]) {
    guard let width = rows.first?.count else { return }
    let widths = (0..<width).map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        let cells = row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }
        print(cells.joined(separator: "  "))
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show an artifact's metadata, signature and files.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let reference = try parseReference(reference)
            let descriptor = try store.resolve(reference)
            if descriptor.artifactType != ModelPack.artifactType, let image = try? RootFilesystem.load(descriptor, from: store) {
                try ImageReport(reference: reference, descriptor: descriptor, image: image).print(json: json)
                return
            }
            let artifact = try Artifact.load(reference, from: store, verifyLayers: false)
            let report = InspectReport(artifact)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                report.printText()
            }
        }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Re-hash every blob of an artifact; fail naming the first that does not match.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let reference = try parseReference(reference)
            let store = try store.open()
            let descriptor = try store.resolve(reference)
            let blobs = try store.verify(descriptor) { blob in
                progressBar(label: blob.annotations?[OCIAnnotation.title] ?? blob.digest.short, total: blob.size)
            }
            // A model artifact is also loaded, which checks its structure beyond the digests.
            if descriptor.artifactType == ModelPack.artifactType {
                _ = try Artifact.load(reference, from: store, verifyLayers: false)
            }
            let total = blobs.reduce(Int64(0)) { $0 + $1.size }
            print("verified \(reference): \(blobs.count) blobs, \(ProgressBar.bytes(total)), all digests match")
        }
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an artifact as an OCI image-layout tar.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Option(name: .shortAndLong, help: "Output file.")
    var output: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let reference = try parseReference(reference)
            let store = try store.open()
            let descriptor = try store.resolve(reference)
            let total = try store.closure(of: descriptor).reduce(Int64(0)) { $0 + $1.size }
            let refName = reference.refName ?? "\(reference.name):\(Reference.defaultTag)"
            try store.exportArchive(descriptor, refName: refName, to: output, progress: progressBar(label: "export", total: total))
            print("exported \(reference) to \(output)")
        }
    }
}

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read an OCI image-layout tar into the store, verifying every blob.")

    @Argument(help: "The .tar file.")
    var archive: String

    @Option(name: .customLong("as"), help: "NAME[:TAG] to give the imported artifact.")
    var rename: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let size = (try? FileSystem.size(of: archive)) ?? 0
            let tagged = try store.open().importArchive(
                from: archive, as: try rename.map(parseReference), progress: progressBar(label: "import", total: size)
            )
            for entry in tagged { print("imported \(entry.refName) \(entry.descriptor.digest)") }
        }
    }
}

struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write an artifact's original files back into a directory.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var reference: String

    @Argument(help: "Target directory (created if missing).")
    var directory: String

    @Flag(help: "Overwrite files that already exist.")
    var force = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let artifact = try Artifact.load(try parseReference(reference), from: store)
            let written = try Unpacker(store: store, overwrite: force).unpack(artifact, into: directory)
            print("unpacked \(written.count) file(s) into \(directory)")
        }
    }
}

struct Tag: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Give an artifact another reference.")

    @Argument(help: "Existing NAME[:TAG] or NAME@sha256:DIGEST")
    var source: String

    @Argument(help: "New NAME[:TAG]")
    var target: String

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            let target = try parseReference(target)
            guard target.digest == nil else { throw ValidationError("the new reference needs a tag, not a digest") }
            var descriptor = try store.resolve(try parseReference(source))
            descriptor.annotations = nil
            try store.tag(descriptor, as: target)
            print("tagged \(target) \(descriptor.digest)")
        }
    }
}

struct Remove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove references; blobs stay until `vessel gc`.")

    @Argument(help: "NAME[:TAG] or NAME@sha256:DIGEST")
    var references: [String]

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let store = try store.open()
            for text in references {
                for removed in try store.untag(try parseReference(text)) { print("removed \(removed)") }
            }
        }
    }
}

struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gc", abstract: "Delete blobs no reference reaches, and leftovers of interrupted writes.")

    @Flag(help: "Only report what would be removed.")
    var dryRun = false

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let report = try store.open().collectGarbage(dryRun: dryRun)
            let verb = dryRun ? "would remove" : "removed"
            print("\(verb) \(report.removedBlobs.count) blob(s), \(ProgressBar.bytes(report.freedBytes)); \(report.removedTemporaryFiles) temporary file(s)")
        }
    }
}
