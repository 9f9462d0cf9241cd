import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

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
