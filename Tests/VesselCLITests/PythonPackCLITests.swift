import Foundation
import Testing
import VesselTestSupport

/// `vessel pack` for a Python model: requirements resolved once into vessel.lock, every wheel
/// carried in the artifact, and an environment built from them with no package index.
@Suite("python packaging")
struct PythonPackCLITests {
    static let wheelhouse = TestSupport.packageRoot + "/.build/wheelhouse"

    @Test(
        "pack resolves runtime.requirements into vessel.lock and carries each wheel as a layer; a second pack reuses the lock; with an empty cache and no index, serving builds the environment from the artifact's wheels"
    )
    func vendored() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("python-pack")
        defer { TestSupport.remove(scratch) }
        let directory = scratch + "/model", home = scratch + "/home"
        try TestSupport.write(
            """
            import numpy as np

            class Predictor:
                def setup(self):
                    self.scale = np.load("weights.npy")

                def predict(self, x):
                    return {"y": x * self.scale, "numpy": np.array([np.__version__])}

            """, to: directory + "/predict.py")
        try TestSupport.python("import numpy; numpy.save('\(directory)/weights.npy', numpy.float32(3))")
        let yaml = """
            name: scaler
            version: "1"
            model: {format: numpy, file: weights.npy}
            runtime:
              backend: python
              predictor: predict.py:Predictor
              requirements: [numpy==2.4.6]
            signature:
              inputs: [{name: x, dtype: float32, shape: [-1, 2]}]
              outputs:
                - {name: y, dtype: float32, shape: [-1, 2]}
                - {name: numpy, dtype: string, shape: [1]}
            examples:
              - name: triples
                inputs: {x: [[1, 2]]}
                outputs: {y: [[3, 6]], numpy: ["2.4.6"]}

            """
        try TestSupport.write(yaml, to: directory + "/vessel.yaml")
        // Pack resolves from a local wheelhouse as it would from an index (pip's own settings).
        let packing = [
            "VESSEL_HOME": home, "VESSEL_PYTHON": TestSupport.python, "VESSEL_CACHE": scratch + "/cache-pack",
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": Self.wheelhouse
        ]
        let packed = try await TestSupport.run(TestSupport.vesselBinary, ["pack", directory], environment: packing)
        #expect(packed.status == 0, "\(packed.standardError)")
        #expect(packed.standardError.contains("resolved runtime.requirements to 1 wheel(s)"), "\(packed.standardError)")
        let wheel = try #require(FileManager.default.contentsOfDirectory(atPath: Self.wheelhouse).first { $0.hasPrefix("numpy-2.4.6-") })
        let digest = try TestSupport.opensslDigest(Self.wheelhouse + "/" + wheel)
        let lock = try String(contentsOfFile: directory + "/vessel.lock", encoding: .utf8)
        #expect(lock.contains("numpy==2.4.6 --hash=\(digest)  # \(wheel)"), "\(lock)")

        let inspect = try await TestSupport.run(TestSupport.vesselBinary, ["inspect", "scaler:1"], environment: packing)
        #expect(inspect.standardOutput.contains(".vessel/wheels/\(wheel)") && inspect.standardOutput.contains("vessel.lock"), "\(inspect.standardOutput)")

        // Packed again: the lock is reused as it is, not resolved again.
        let again = try await TestSupport.run(TestSupport.vesselBinary, ["pack", directory], environment: packing)
        #expect(again.status == 0 && !again.standardError.contains("resolved"), "\(again.standardError)")
        #expect(try String(contentsOfFile: directory + "/vessel.lock", encoding: .utf8) == lock)

        // Serving elsewhere: an empty cache and an index that refuses connections.
        let serving = [
            "VESSEL_HOME": home, "VESSEL_PYTHON": TestSupport.python, "VESSEL_CACHE": scratch + "/cache-serve",
            "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": ""
        ]
        let predicted = try await TestSupport.run(TestSupport.vesselBinary, ["predict", "scaler:1", "-i", "x=[[1,2],[3,4]]", "--json"], environment: serving)
        #expect(predicted.status == 0, "\(predicted.standardError)")
        #expect(
            predicted.standardOutput.contains(#""data":[3.0,6.0,9.0,12.0]"#) && predicted.standardOutput.contains(#""data":["2.4.6"]"#),
            "\(predicted.standardOutput)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: scratch + "/cache-serve/envs").filter { !$0.hasPrefix(".") }.count) == 1)

        // Images do not carry Python yet: refused up front, not built and then failing to load.
        let image = try await TestSupport.run(TestSupport.vesselBinary, ["image", "scaler:1", "-t", "scaler-image:1"], environment: packing)
        #expect(
            image.status != 0 && image.standardError.contains("runs on the python backend, and images do not carry a Python interpreter"),
            "\(image.standardError)")

        // A requirement no wheel satisfies stops pack with pip's reason, and the lock stays.
        try TestSupport.write(
            yaml.replacingOccurrences(of: "[numpy==2.4.6]", with: "[numpy==2.4.6, no-such-package-vessel==1.0]"), to: directory + "/vessel.yaml")
        let refused = try await TestSupport.run(TestSupport.vesselBinary, ["pack", directory], environment: packing)
        #expect(refused.status != 0 && refused.standardError.contains("pip could not resolve runtime.requirements to wheels"), "\(refused.standardError)")
        #expect(try String(contentsOfFile: directory + "/vessel.lock", encoding: .utf8) == lock)
    }
}
