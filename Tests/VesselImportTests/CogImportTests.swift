import Foundation
import Testing
import VesselManifest
import VesselManifestYAML
import VesselTensor
import VesselTestSupport
@testable import VesselImport

/// The Cog importer against the real `cog` package (in the test venv): the predictor's typed
/// inputs become the signature, and what it writes validates as a model directory.
@Suite("vessel import cog")
struct CogImportTests {
    var environment: [String: String] { ProcessInfo.processInfo.environment.merging(["VESSEL_PYTHON": TestSupport.python]) { $1 } }

    func project(predictor: String, cogYAML: String) throws -> String {
        try TestSupport.python("import cog")
        let directory = try TestSupport.makeTemporaryDirectory("cog-project")
        try TestSupport.write(cogYAML, to: directory + "/cog.yaml")
        try TestSupport.write(predictor, to: directory + "/predict.py")
        try TestSupport.write("weights", to: directory + "/weights/model.bin")
        return directory
    }

    @Test("typed inputs, defaults and optionals become the signature; the directory validates")
    func signature() throws {
        let source = try project(
            predictor: """
                from typing import Optional
                from cog import BasePredictor, Input, Path

                class Predictor(BasePredictor):
                    def setup(self):
                        pass

                    def predict(self,
                                text: str = Input(description="what to say"),
                                count: int = Input(default=3, ge=1, le=10),
                                scale: float = 1.5,
                                flags: list[bool] = Input(default=None),
                                image: Path = Input(description="a picture"),
                                note: Optional[str] = None) -> list[float]:
                        return [0.0]
                """,
            cogYAML: """
                build:
                  python_version: "3.11.4"
                  python_packages: ["numpy==2.4.6"]
                  system_packages: ["libgl1"]
                  gpu: true
                predict: "predict.py:Predictor"
                """)
        defer { TestSupport.remove(source) }
        let output = source + "-imported"
        defer { TestSupport.remove(output) }
        let result = try CogImporter.run(source: source, output: output, name: "greeter", environment: environment)
        #expect(result.directory == output)
        #expect(result.notes.contains { $0.contains("system_packages (libgl1)") })
        #expect(result.notes.contains { $0.contains("asks for a GPU") })

        let manifest = try ManifestParser.load(directory: output).manifest
        #expect(manifest.name == "greeter")
        let inputs = manifest.signature.inputs
        #expect(inputs.map(\.name) == ["text", "count", "scale", "flags", "image", "note"])
        #expect(inputs.map(\.dtype) == [.string, .int64, .float64, .bool, .string, .string])
        #expect(inputs.map(\.isOptional) == [false, true, true, false, false, true])
        #expect(inputs.first?.description == "what to say")
        #expect(manifest.signature.outputs.map(\.dtype) == [.float64])
        #expect(manifest.runtime.python == "3.11")
        let cogVersion = try TestSupport.python("import cog; print(cog.__version__)").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(manifest.runtime.requirements == ["numpy==2.4.6", "cog==\(cogVersion)"])
        #expect(FileManager.default.fileExists(atPath: output + "/weights/model.bin"))
    }

    @Test("what cannot be imported is refused with the reason, and nothing is left behind")
    func refusals() throws {
        let source = try project(
            predictor: """
                from cog import BasePredictor

                class Predictor(BasePredictor):
                    def predict(self, table: dict) -> str:
                        return ""
                """, cogYAML: "predict: predict.py:Predictor\n")
        defer { TestSupport.remove(source) }
        let output = source + "-imported"
        func refusal(_ body: () throws -> Void) -> String {
            do { try body(); return "accepted" } catch { return "\(error)" }
        }
        #expect(
            refusal { _ = try CogImporter.run(source: source, output: output, name: nil, environment: environment) }
                == "input `table` is a `dict`, which vessel cannot carry as a tensor yet (str, int, float, bool, Path, File and lists of them)")
        #expect(!FileManager.default.fileExists(atPath: output), "a failed import leaves no directory")

        try TestSupport.write("build:\n  python_version: '3.11'\n", to: source + "/cog.yaml")
        #expect(
            refusal { _ = try CogImporter.run(source: source, output: output, name: nil, environment: environment) }.contains(
                "cog.yaml has no `predict: file.py:Predictor`"))
        #expect(
            refusal { _ = try CogImporter.run(source: source + "/weights", output: output, name: nil, environment: environment) }
                .contains("has no readable cog.yaml"))

        try TestSupport.write("predict: predict.py:Missing\n", to: source + "/cog.yaml")
        #expect(
            refusal { _ = try CogImporter.run(source: source, output: output, name: nil, environment: environment) }.contains("reading the predictor's inputs"))
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { TestSupport.remove(output) }
        try TestSupport.write("predict: predict.py:Predictor\n", to: source + "/cog.yaml")
        #expect(
            refusal { _ = try CogImporter.run(source: source, output: output, name: nil, environment: environment) }
                == "\(output) already exists; choose another directory with -o")
    }
}
