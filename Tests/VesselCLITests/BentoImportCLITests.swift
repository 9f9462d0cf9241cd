import Foundation
import Testing
import VesselServer
import VesselTestSupport

/// `vessel import bento` on a Bento real `bentoml build` made: a scikit-learn model saved with
/// `bentoml.sklearn.save_model`, a service with two APIs (one annotated, one not, one scalar
/// parameter with a default). Each API is packed with its locked wheels (from a local wheelhouse),
/// served from the store with no index, and queried over OIP v2; the answers equal what the
/// same service's methods give when BentoML runs them. The interpreter is the BentoML venv
/// scripts/onnx-test-data.sh makes.
@Suite("vessel import bento")
struct BentoImportCLITests {
    static let python = TestSupport.packageRoot + "/.build/venv-bento/bin/python"
    static let wheelhouse = TestSupport.packageRoot + "/.build/wheelhouse-bento"

    @Test("a built Bento's two APIs become two models: packed, served with no index, and answering as BentoML does")
    func bento() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "scripts/onnx-test-data.sh makes .build/venv-bento")
        let scratch = try TestSupport.makeTemporaryDirectory("bento")
        defer { TestSupport.remove(scratch) }
        let project = scratch + "/project", bentoHome = scratch + "/bentoml"
        try TestSupport.write(
            """
            from typing import Annotated

            import bentoml
            import numpy as np
            from bentoml.validators import DType, Shape


            @bentoml.service
            class IrisClassifier:
                bento_model = bentoml.models.BentoModel("iris_clf:latest")

                def __init__(self):
                    self.model = bentoml.sklearn.load_model(self.bento_model)

                @bentoml.api
                def classify(self, features: Annotated[np.ndarray, Shape((-1, 4)), DType("float32")]) -> Annotated[np.ndarray, DType("int64")]:
                    return self.model.predict(features)

                @bentoml.api
                def proba(self, features: np.ndarray, scale: float = 1.0) -> np.ndarray:
                    return self.model.predict_proba(features) * scale

            """, to: project + "/service.py")
        try TestSupport.write(
            """
            service: "service:IrisClassifier"
            include: ["*.py"]
            python:
              packages: [scikit-learn==1.9.1, numpy==2.4.6]
              lock_packages: false

            """, to: project + "/bentofile.yaml")
        let bentoEnvironment = ["BENTOML_HOME": bentoHome, "BENTOML_DO_NOT_TRACK": "true"]
        // The model, the Bento, and the reference answers: the service's own methods.
        let made = try await TestSupport.run(
            Self.python,
            [
                "-c",
                """
                import json, subprocess, sys, os
                import bentoml, numpy as np
                from sklearn.datasets import load_iris
                from sklearn.ensemble import RandomForestClassifier
                X, y = load_iris(return_X_y=True)
                bentoml.sklearn.save_model("iris_clf", RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y))
                os.chdir("\(project)")
                built = subprocess.run([os.path.join(os.path.dirname(sys.executable), "bentoml"), "build"], capture_output=True, text=True)
                assert built.returncode == 0, built.stdout + built.stderr
                sys.path.insert(0, "\(project)")
                import service
                instance = service.IrisClassifier.inner()
                rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
                print(json.dumps({"classify": instance.classify(rows).tolist(), "proba": instance.proba(rows, scale=2.0).flatten().tolist()}))
                """
            ], environment: bentoEnvironment)
        #expect(made.status == 0, "\(made.standardError)")
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data((made.standardOutput.split(separator: "\n").last ?? "").utf8)) as? [String: Any])

        // By tag, from the Bento store: one model directory per API.
        let imported = try await TestSupport.run(
            TestSupport.vesselBinary, ["import", "bento", "iris_classifier:latest", "-o", scratch + "/iris"], environment: bentoEnvironment)
        #expect(imported.status == 0, "\(imported.standardError)")
        #expect(imported.standardOutput.contains("wrote \(scratch)/iris/classify/vessel.yaml") && imported.standardOutput.contains("iris/proba/vessel.yaml"))
        #expect(imported.standardError.contains("proba: input `features` is a tensor of no declared dtype"), "\(imported.standardError)")
        let classifyYAML = try String(contentsOfFile: scratch + "/iris/classify/vessel.yaml", encoding: .utf8)
        #expect(classifyYAML.contains(#"{name: "features", dtype: float32, shape: [-1, 4]}"#), "\(classifyYAML)")
        #expect(classifyYAML.contains(#"{name: "output", dtype: int64, shape: [-1]}"#), "\(classifyYAML)")
        #expect(classifyYAML.contains(#"requirements: ["scikit-learn==1.9.1", "numpy==2.4.6", "bentoml==1.4.40"]"#), "\(classifyYAML)")
        let probaYAML = try String(contentsOfFile: scratch + "/iris/proba/vessel.yaml", encoding: .utf8)
        #expect(probaYAML.contains(#"{name: "scale", dtype: float64, shape: [1], optional: true}"#), "\(probaYAML)")

        // Packed with their wheels; served from the store with an empty cache and no index.
        let home = scratch + "/home"
        let packing = [
            "VESSEL_HOME": home, "VESSEL_PYTHON": Self.python, "VESSEL_CACHE": scratch + "/cache-pack", "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": Self.wheelhouse
        ]
        for api in ["classify", "proba"] {
            let packed = try await TestSupport.run(TestSupport.vesselBinary, ["pack", scratch + "/iris/" + api], environment: packing)
            #expect(packed.status == 0, "\(api): \(packed.standardError)")
        }
        let server = try ServeProcess(
            ["iris-classifier-classify:1", "iris-classifier-proba:1"], home: home,
            environment: [
                "VESSEL_PYTHON": Self.python, "VESSEL_CACHE": scratch + "/cache-serve", "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                "PIP_FIND_LINKS": "", "BENTOML_HOME": scratch + "/elsewhere"
            ])
        defer { server.process.terminate() }
        // The port once it listens; the two models' environments are built from their wheels
        // after that, which on a loaded machine took past `waitForReady`'s 30 s (a CI run), so
        // readiness is the health poll's to wait for.
        let port = try server.waitForReady("listening on")
        let bothReady = await TestSupport.poll(timeout: 120) {
            (try? LoopbackClient.request("GET", port: port, path: "/v2/health/ready", timeout: 2))?.status == 200
        }
        #expect(bothReady, "\(server.standardError)")
        let features = #"{"name": "features", "datatype": "FP32", "shape": [3, 4], "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3, 5.9, 3.0, 4.2, 1.5]}"#
        let classify = try LoopbackClient.request(
            "POST", port: port, path: "/v2/models/iris-classifier-classify/infer", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs": [\#(features)]}"#.utf8))
        #expect(classify.status == 200, "\(classify.text) \(server.standardError)")
        #expect(TorchScriptCLITests.outputs(classify.text)["output"] == (expected["classify"] as? [NSNumber])?.map(\.doubleValue), "\(classify.text)")
        let proba = try LoopbackClient.request(
            "POST", port: port, path: "/v2/models/iris-classifier-proba/infer", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs": [\#(features), {"name": "scale", "datatype": "FP64", "shape": [1], "data": [2.0]}]}"#.utf8))
        #expect(proba.status == 200, "\(proba.text)")
        let probabilities = TorchScriptCLITests.outputs(proba.text)["output"] ?? []
        let reference = (expected["proba"] as? [NSNumber])?.map(\.doubleValue) ?? []
        #expect(probabilities.count == 9 && zip(probabilities, reference).allSatisfy { abs($0 - $1) <= 1e-12 }, "\(probabilities) vs \(reference)")

        // Only the API asked for; an API the Bento lacks is named with those it has.
        let one = try await TestSupport.run(
            TestSupport.vesselBinary, ["import", "bento", "iris_classifier", "--api", "proba", "-o", scratch + "/one"], environment: bentoEnvironment)
        #expect(one.status == 0 && FileManager.default.fileExists(atPath: scratch + "/one/vessel.yaml"), "\(one.standardError)")
        let unknown = try await TestSupport.run(
            TestSupport.vesselBinary, ["import", "bento", "iris_classifier", "--api", "predict", "-o", scratch + "/none"], environment: bentoEnvironment)
        #expect(unknown.status != 0 && unknown.standardError.contains("the Bento has no API `predict`; its APIs: classify, proba"), "\(unknown.standardError)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/none"))
    }
}
