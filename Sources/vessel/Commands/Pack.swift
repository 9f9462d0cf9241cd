import ArgumentParser
import Foundation
import VesselArtifact
import VesselManifest
import VesselManifestYAML
import VesselPython
import VesselModelSources
import VesselServer
import VesselStore
import VesselTrust

struct Pack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a model directory, run its examples through a real server, and store it as a content-addressed artifact."
    )

    @Argument(help: "Directory holding vessel.yaml.")
    var directory: String = "."

    @Option(name: [.short, .customLong("tag")], help: "Reference to give the artifact (default: name:version from vessel.yaml).")
    var tag: String?

    @Flag(name: .customLong("no-test"), help: "Do not run the examples first (recorded in the artifact).")
    var noTest = false

    @Flag(name: .customLong("no-attestations"), help: "Do not attach SLSA provenance and a CycloneDX SBOM to the artifact.")
    var noAttestations = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let started = Date()
        var examples = "skipped"
        var exampleCount = 0
        // Manifest problems first, each with file:line:column. Then a Python model's requirements
        // are resolved once, recorded in vessel.lock and their wheels fetched before its examples
        // run: those run on the environment built from them.
        try vessel.run {
            let manifest = try ManifestParser.load(directory: directory).manifest
            let runtime = manifest.runtime
            guard runtime.backend == .python, !runtime.requirements.isEmpty else { return }
            let (lock, resolved) = try PythonEnvironment.lock(
                directory: directory, requirements: runtime.requirements, python: runtime.python,
                environment: ProcessInfo.processInfo.environment)
            if resolved {
                printError("resolved runtime.requirements to \(lock.entries.count) wheel(s) for Python \(lock.python); wrote \(RuntimeSpec.lockFileName)")
            }
        }
        if !noTest {
            // Nothing is stored unless the examples pass, served exactly as `vessel serve` would.
            let report = await ExampleRun.run(try ModelSource.directory(directory))
            if !report.passed {
                printReport(report)
                printError("error: the examples failed, so nothing was stored (--no-test skips them)")
                throw ExitCode.failure
            }
            examples = report.rows.isEmpty ? "none" : "passed"
            exampleCount = report.rows.count
        }
        try vessel.run {
            let reference = try tag.map(parseReference)
            let store = try store.open()
            let packer = Packer(store: store, progress: { label, total in progressBar(label: label, total: total) })
            let result = try packer.pack(directory: directory, reference: reference, annotations: [VesselAnnotation.examples: examples])
            for warning in result.warnings { printError(warning.description) }
            print("packed \(result.reference)")
            print("digest \(result.manifest.digest)")
            guard !noAttestations else { return }
            let manifest = result.packedManifest
            let wheels = result.wheels.map { Attestations.Wheel(name: $0.name, version: $0.version, sha256: $0.sha256, file: $0.file) }
            let record = Attestations.PackRecord(
                reference: result.reference.description, manifest: result.manifest, modelName: manifest.name, modelVersion: manifest.version,
                files: result.files, wheels: wheels, directory: directory, examples: examples, exampleCount: exampleCount,
                vesselVersion: InferenceServer.version, started: started, finished: Date())
            try Attestations.attach(Attestations.provenance(record), kind: .provenance, to: result.manifest, store: store)
            try Attestations.attach(Attestations.sbom(record), kind: .sbom, to: result.manifest, store: store)
            print("attached SLSA provenance and a CycloneDX SBOM (vessel inspect \(result.reference) --attached provenance|sbom)")
        }
    }
}
