import ArgumentParser
import Foundation
import VesselArtifact
import VesselManifest
import VesselServeCommand
import VesselStore
import VesselSystem

@main
struct Vessel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vessel",
        abstract: "Package trained models into verifiable OCI artifacts, and run them the same way everywhere.",
        version: "0.1.0",
        subcommands: [
            Init.self, Validate.self, Pack.self, List.self, Inspect.self, Verify.self, Export.self, Import.self,
            Unpack.self, Tag.self, Remove.self, Keygen.self, Sign.self, GC.self, Run.self, Predict.self, Bench.self, Serve.self, Test.self, Image.self,
            Health.self, Deploy.self, Push.self, Pull.self, Login.self, Logout.self
        ]
    )
}

/// Options every store command shares: where the store is.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Store directory (an OCI image layout).", valueName: "dir"))
    var home: String?

    /// `--home`, then `$VESSEL_HOME`, then `~/.vessel`: resolved here only.
    func open() throws -> Store {
        try Store(root: home ?? Store.defaultRoot)
    }

    /// The store and what a reference argument (NAME[:TAG] or NAME@DIGEST) names in it.
    func resolve(_ argument: String) throws -> (store: Store, reference: Reference, descriptor: Descriptor) {
        let reference = try parseReference(argument)
        let store = try open()
        return (store, reference, try store.resolve(reference))
    }
}

/// Runs a command body, printing library errors readably and exiting non-zero.
func run(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ManifestValidationError {
        printError(error.description)
        throw ExitCode.failure
    } catch let error as ExitCode {
        throw error
    } catch let error as any CustomStringConvertible & Error {
        printError("error: \(error.description)")
        throw ExitCode.failure
    } catch {
        printError("error: \(error)")
        throw ExitCode.failure
    }
}

func printError(_ text: String) {
    StandardStreams.error(text)
}

func parseReference(_ text: String) throws -> Reference {
    do {
        return try Reference(parsing: text)
    } catch {
        throw ValidationError("\(error)")
    }
}

/// One progress bar per file on a terminal, none otherwise.
func progressBar(label: String, total: Int64) -> ProgressBar {
    ProgressBar(label: label, total: total)
}
