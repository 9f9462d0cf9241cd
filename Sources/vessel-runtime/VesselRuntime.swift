import ArgumentParser
import VesselServer
import VesselServeCommand

/// The binary an image ships as `/vessel/bin/vessel`: `serve` for the image's model and `health`
/// for its health check, and nothing else. It links FoundationEssentials only — no YAML parser,
/// no store, no registry client, no ICU data — which keeps the runtime layer small.
@main
struct VesselRuntime: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vessel",
        abstract: "The Vessel runtime of an image: serves its model, answers its health check.",
        discussion: "The full `vessel` command packs, tests, builds images and serves from the store; this one serves an image's model only.",
        subcommands: [ServeImageModel.self, Health.self]
    )
}

struct ServeImageModel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve an image's model over the Open Inference Protocol v2, once its files match the file index.",
        discussion: """
            The image's entrypoint: serve --verify-files /vessel/model.json /. VESSEL_HOST and VESSEL_PORT set the address. \
            With --require-signature PUB (or VESSEL_REQUIRE_SIGNATURE=PUB, a mounted key), one of the artifact's signatures the \
            image carries must verify with that key and list exactly the files, or the server stops before it listens.
            """
    )

    @Argument(help: ArgumentHelp("The directory holding the model's files (an image's root), optionally ALIAS=….", valueName: "dir"))
    var model: String

    @OptionGroup var options: ServeOptions

    @Option(
        name: .customLong("require-signature"),
        help: ArgumentHelp("A public key (PEM): serve only if a signature of the files verifies with it (default $VESSEL_REQUIRE_SIGNATURE).", valueName: "pub")
    )
    var requireSignature: String?

    func run() async throws {
        guard let index = try options.fileIndex() else {
            throw ValidationError(
                "this runtime serves an image's model: give its file index with --verify-files (the full `vessel` serves vessel.yaml directories and artifacts)"
            )
        }
        let (alias, root) = try ServeOptions.splitAlias(model)
        let signatures = try FileIndexSignature.require(index, keyPath: requireSignature, servedAs: alias)
        try await options.serve(signatures: signatures) { [try ModelSource.unpacked(root: root, index: index, alias: alias)] }
    }
}
