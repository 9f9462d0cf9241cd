import ArgumentParser
import Foundation
import VesselImage
import VesselModel
import VesselServer
import VesselServing
import VesselSources
import VesselStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve models over the Open Inference Protocol v2 (KServe/Triton REST), with health, metrics and logs.",
        discussion: """
        Each model is served under the name in its vessel.yaml (ALIAS=REF to rename). Settings also come from \
        VESSEL_HOST and VESSEL_PORT. SIGTERM or SIGINT stops accepting, turns readiness off, and lets requests \
        in flight finish.
        """
    )

    @Argument(help: ArgumentHelp("Artifacts (NAME[:TAG], NAME@DIGEST) or model directories, optionally ALIAS=….", valueName: "ref-or-dir"))
    var models: [String]

    @OptionGroup var options: ServeOptions

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let index = try options.fileIndex()
        try await options.serve {
            guard let index else { return try models.map { try modelSource($0, store: store) } }
            guard models.count == 1, case let (alias, root) = try ServeOptions.splitAlias(models[0]), FileSystem.isDirectory(root) else {
                throw ValidationError("--verify-files needs exactly one model directory")
            }
            // An index from an older image has no manifest: read the vessel.yaml beside the files.
            return [index.manifest == nil ? try .directory(root, alias: alias, verifying: index) : try .unpacked(root: root, index: index, alias: alias)]
        }
    }
}
