import ArgumentParser
import Foundation
import VesselArtifact
import VesselManifest
import VesselStore

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a model directory's vessel.yaml and show every problem at once.")

    @Argument(help: "Directory holding vessel.yaml.")
    var directory: String = "."

    func run() throws {
        try vessel.run {
            let result = try ManifestParser.load(directory: directory)
            for warning in result.warnings { printError(warning.description) }
            print("\(ManifestParser.fileName) is valid: \(result.manifest.name):\(result.manifest.version), \(result.manifest.allFiles.count) file(s)")
        }
    }
}

struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a model directory and store it as a content-addressed artifact.")

    @Argument(help: "Directory holding vessel.yaml.")
    var directory: String = "."

    @Option(name: [.short, .customLong("tag")], help: "Reference to give the artifact (default: name:version from vessel.yaml).")
    var tag: String?

    @OptionGroup var store: StoreOptions

    func run() throws {
        try vessel.run {
            let reference = try tag.map(parseReference)
            let packer = Packer(store: try store.open(), progress: { label, total in progressBar(label: label, total: total) })
            let result = try packer.pack(directory: directory, reference: reference)
            for warning in result.warnings { printError(warning.description) }
            print("packed \(result.reference)")
            print("digest \(result.manifest.digest)")
        }
    }
}
