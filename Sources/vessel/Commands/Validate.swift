import ArgumentParser
import Foundation
import VesselArtifact
import VesselManifest
import VesselManifestYAML
import VesselModelSources
import VesselServer
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
