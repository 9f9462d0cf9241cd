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
                    let manifest = try? JSONDecoder().decode(ImageManifest.self, from: data)
                {
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
