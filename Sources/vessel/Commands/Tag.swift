import ArgumentParser
import Foundation
import VesselArtifact
import VesselImage
import VesselManifest
import VesselStore

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
