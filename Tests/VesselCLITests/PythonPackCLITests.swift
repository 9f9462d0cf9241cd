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
        let yaml = try Self.writeScaler(in: directory, withHelper: false)
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

        // A requirement no wheel satisfies stops pack with pip's reason, and the lock stays.
        try TestSupport.write(
            yaml.replacingOccurrences(of: "[numpy==2.4.6]", with: "[numpy==2.4.6, no-such-package-vessel==1.0]"), to: directory + "/vessel.yaml")
        let refused = try await TestSupport.run(TestSupport.vesselBinary, ["pack", directory], environment: packing)
        #expect(refused.status != 0 && refused.standardError.contains("pip could not resolve runtime.requirements to wheels"), "\(refused.standardError)")
        #expect(try String(contentsOfFile: directory + "/vessel.lock", encoding: .utf8) == lock)
    }

    @Test(
        "a Python model's image carries its interpreter and the environment its lock pins: examples pass in an isolated root, podman runs it with no network, the SBOM lists the locked packages"
    )
    func image() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("python-image")
        defer { TestSupport.remove(scratch) }
        let directory = scratch + "/model", home = scratch + "/home"
        try Self.writeScaler(in: directory, withHelper: true)
        // Packed from a local wheelhouse; everything after has no index to reach.
        let environment = [
            "VESSEL_HOME": home, "VESSEL_PYTHON": TestSupport.python, "VESSEL_CACHE": scratch + "/cache",
            "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": Self.wheelhouse
        ]
        let packed = try await TestSupport.run(TestSupport.vesselBinary, ["pack", directory], environment: environment)
        #expect(packed.status == 0, "\(packed.standardError)")
        let offline = environment.merging(["PIP_NO_INDEX": "", "PIP_FIND_LINKS": "", "PIP_INDEX_URL": "http://127.0.0.1:9/simple"]) { $1 }
        let archive = scratch + "/scaler.tar"
        let built = try await TestSupport.run(
            TestSupport.vesselBinary, ["image", "scaler:1", "-t", "scaler-image:1", "--format", "docker", "-o", archive], environment: offline)
        #expect(built.status == 0, "\(built.standardError)")
        let inspect = try await TestSupport.run(TestSupport.vesselBinary, ["inspect", "scaler-image:1"], environment: offline)
        let version = try TestSupport.python("import sys; print('%d.%d.%d' % sys.version_info[:3])").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(inspect.standardOutput.contains("python \(version) ") && inspect.standardOutput.contains("python environment "), "\(inspect.standardOutput)")
        #expect(!inspect.standardOutput.contains(".vessel/wheels"), "the wheels are installed, not carried again: \(inspect.standardOutput)")
        #expect(inspect.standardOutput.contains("VESSEL_PYTHON=/vessel/python/bin/python\(version.split(separator: ".").prefix(2).joined(separator: "."))"))
        let sbom = try await TestSupport.run(TestSupport.vesselBinary, ["inspect", "scaler-image:1", "--attached", "sbom"], environment: offline)
        #expect(sbom.standardOutput.contains("pkg:pypi/numpy@2.4.6"), "\(sbom.standardOutput.prefix(2000))")

        // Its examples, in a root holding only the image's files (bubblewrap): no host Python.
        let tested = try await TestSupport.run(TestSupport.vesselBinary, ["test", "scaler-image:1", "--in-image"], environment: offline)
        #expect(tested.status == 0 && tested.standardOutput.contains("2 output(s) of the examples passed"), "\(tested.standardOutput) \(tested.standardError)")

        // Podman with runc and no network at all: ready, and healthy by its own health check.
        let podman = try Podman(home: scratch)
        defer { podman.tearDown() }
        let load = try await podman(["load", "-i", archive])
        #expect(load.status == 0, "\(load.standardError)")
        let run = try await podman.start(["--name", "scaler", "--network", "none", "localhost/scaler-image:1"])
        #expect(run.status == 0, "\(podman.log)")
        let healthy = await TestSupport.poll(timeout: 60) {
            (try? await podman(["exec", "scaler", "/vessel/bin/vessel", "health"]))?.status == 0
        }
        let logs = try await podman(["logs", "scaler"])
        #expect(healthy, "\(logs.standardError)")
        #expect(try await podman(["healthcheck", "run", "scaler"]).status == 0)
        #expect(try await podman(["stop", "-t", "20", "scaler"]).status == 0)

        // The runtime image has no Python: a ModelCar of this model would never load.
        let modelCar = try await TestSupport.run(TestSupport.vesselBinary, ["image", "scaler:1", "--modelcar"], environment: offline)
        #expect(modelCar.status != 0 && modelCar.standardError.contains("carries no Python"), "\(modelCar.standardError)")
    }

    /// A NumPy predictor that scales its input by weights.npy (3) — plus 1 from a local module
    /// `withHelper` — and answers NumPy's version; its vessel.yaml, also returned.
    @discardableResult
    static func writeScaler(in directory: String, withHelper: Bool) throws -> String {
        try TestSupport.write(
            """
            import numpy as np
            \(withHelper ? "from helper import offset" : "offset = lambda: 0")

            class Predictor:
                def setup(self):
                    self.scale = np.load("weights.npy")

                def predict(self, x):
                    return {"y": x * self.scale + offset(), "numpy": np.array([np.__version__])}

            """, to: directory + "/predict.py")
        if withHelper { try TestSupport.write("def offset():\n    return 1\n", to: directory + "/helper.py") }
        try TestSupport.python("import numpy; numpy.save('\(directory)/weights.npy', numpy.float32(3))")
        let yaml = """
            name: scaler
            version: "1"
            model: {format: numpy, file: weights.npy}
            runtime:
              backend: python
              predictor: predict.py:Predictor
              requirements: [numpy==2.4.6]
            \(withHelper ? "files: [{path: helper.py, role: code}]" : "")
            signature:
              inputs: [{name: x, dtype: float32, shape: [-1, 2]}]
              outputs:
                - {name: y, dtype: float32, shape: [-1, 2]}
                - {name: numpy, dtype: string, shape: [1]}
            examples:
              - name: triples
                inputs: {x: [[1, 2]]}
                outputs: {y: [\(withHelper ? "[4, 7]" : "[3, 6]")], numpy: ["2.4.6"]}

            """
        try TestSupport.write(yaml, to: directory + "/vessel.yaml")
        return yaml
    }
}
