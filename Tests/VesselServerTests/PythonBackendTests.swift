import Foundation
import Testing
import VesselServer
import VesselTestSupport

/// The Python backend against real Python: scikit-learn models saved with joblib and pickle, a
/// predictor class, and predictors that raise, crash, hang or scribble on the protocol.
@Suite("python backend")
struct PythonBackendTests {
    init() throws {
        // The servers here run in this process and find Python through VESSEL_PYTHON, which
        // scripts/test.sh exports (the test venv, with numpy, scikit-learn and joblib). Setting it
        // here with setenv would race every thread reading the environment.
        let chosen = ProcessInfo.processInfo.environment["VESSEL_PYTHON"]
        try #require(
            chosen != nil && FileManager.default.isExecutableFile(atPath: chosen!),
            "run the tests through scripts/test.sh, or with VESSEL_PYTHON=\(TestSupport.python)")
    }

    @Test(
        "a scikit-learn model saved with joblib, and with pickle, answers over OIP v2 and MLflow exactly as it does in Python", arguments: ["joblib", "pickle"])
    func scikitLearn(format: String) async throws {
        let directory = try TestSupport.makeTemporaryDirectory("python-\(format)")
        defer { TestSupport.remove(directory) }
        // A real model trained on a dataset scikit-learn ships; the expected answers come from it.
        let expected = try TestSupport.python(
            """
            import json, pickle, joblib, numpy as np, sklearn
            from sklearn.datasets import load_wine
            from sklearn.ensemble import RandomForestClassifier
            X, y = load_wine(return_X_y=True)
            model = RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y)
            if "\(format)" == "joblib":
                joblib.dump(model, "\(directory)/model.joblib")
            else:
                pickle.dump(model, open("\(directory)/model.pkl", "wb"))
            rows = X[[0, 70, 140]]
            print(json.dumps({"rows": rows.tolist(), "label": model.predict(rows).tolist(),
                              "proba": model.predict_proba(rows).astype(np.float32).tolist(), "version": sklearn.__version__}))
            """)
        let reference = try #require(try JSONSerialization.jsonObject(with: Data(expected.utf8)) as? [String: Any])
        let rows = try #require(reference["rows"] as? [[Double]])
        let version = try #require(reference["version"] as? String)
        try TestSupport.write(
            """
            name: wine
            version: "1"
            model: {format: \(format), file: model.\(format == "joblib" ? "joblib" : "pkl")}
            runtime:
              backend: python
              requirements: [scikit-learn==\(version)]
            signature:
              inputs: [{name: features, dtype: float64, shape: [-1, 13]}]
              outputs:
                - {name: label, dtype: int64, shape: [-1]}
                - {name: probabilities, dtype: float32, shape: [-1, 3]}
            examples:
              - name: first
                inputs: {features: [\(rows[0].map { String($0) }.joined(separator: ", "))]}
                outputs: {label: [\((reference["label"] as? [Int])?[0] ?? -1)]}

            """.replacingOccurrences(of: "{features: [", with: "{features: [["), to: directory + "/vessel.yaml")
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8).replacingOccurrences(of: "]}\n    outputs", with: "]]}\n    outputs")
        try TestSupport.write(yaml, to: directory + "/vessel.yaml")

        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }
        let data = rows.flatMap { $0 }.map { String($0) }.joined(separator: ",")
        let oip = try await running.infer(#"{"inputs":[{"name":"features","shape":[3,13],"datatype":"FP64","data":[\#(data)]}]}"#, model: "wine")
        let outputs = jsonObject(oip)["outputs"] as? [[String: Any]] ?? []
        #expect(oip.status == 200, "\(oip.text)")
        #expect(outputs.first?["data"] as? [Int] == reference["label"] as? [Int], "\(oip.text)")
        let proba = (reference["proba"] as? [[Double]] ?? []).flatMap { $0 }
        let served = outputs.last?["data"] as? [Double] ?? []
        #expect(served.count == 9 && zip(served, proba).allSatisfy { abs($0 - $1) <= 1e-7 }, "\(served) vs \(proba)")
        #expect(outputs.last?["datatype"] as? String == "FP32")

        let mlflow = try await running.request(
            "POST", "/invocations", headers: ["Content-Type": "application/json"],
            body: Array(#"{"inputs":[[\#(rows[2].map { String($0) }.joined(separator: ","))]]}"#.utf8))
        let predictions = jsonObject(mlflow)["predictions"] as? [String: Any]
        #expect(mlflow.status == 200 && predictions?["label"] as? [Int] == [(reference["label"] as? [Int])?[2] ?? -1], "\(mlflow.text)")

        let metadata = try await running.request("GET", "/v2/models/wine")
        #expect(metadata.text.contains(#""platform":"python""#), "\(metadata.text)")
    }

    @Test("a predictor class is set up once per worker; numbers and text go in and come out; printing goes to the log, not the protocol")
    func predictorClass() async throws {
        let directory = try Self.writePredictor()
        defer { TestSupport.remove(directory) }
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }

        let ok = try await running.infer(Self.request(mode: "print"), model: "faulty")
        let outputs = jsonObject(ok)["outputs"] as? [[String: Any]] ?? []
        #expect(ok.status == 200, "\(ok.text)")
        #expect(outputs.first { $0["name"] as? String == "y" }?["data"] as? [Double] == [2, 4, 6, 8, 10, 12])
        #expect(outputs.first { $0["name"] as? String == "echo" }?["data"] as? [String] == ["PRINT"])
        #expect(outputs.first { $0["name"] as? String == "setups" }?["data"] as? [Int] == [1])
        // Text that is not ASCII survives both ways.
        let text = try await running.infer(Self.request(mode: "grüße"), model: "faulty")
        #expect(
            (jsonObject(text)["outputs"] as? [[String: Any]])?.first { $0["name"] as? String == "echo" }?["data"] as? [String] == ["GRÜSSE"], "\(text.text)")
    }

    @Test(
        "a predictor that raises gets a 500 with its error and keeps its worker; one that segfaults, hangs past the timeout, writes garbage on the protocol or grows past max_worker_memory is replaced; every other request is answered; restarts are counted"
    )
    func failures() async throws {
        let directory = try Self.writePredictor()
        defer { TestSupport.remove(directory) }
        let running = try await RunningServer.start([directory])
        defer { Task { await running.stop() } }

        func pids() async throws -> Set<Int> {
            var seen: Set<Int> = []
            for _ in 0..<6 {
                let response = try await running.infer(Self.request(mode: "ok"), model: "faulty")
                #expect(response.status == 200, "\(response.text)")
                for output in jsonObject(response)["outputs"] as? [[String: Any]] ?? [] where output["name"] as? String == "pid" {
                    seen.formUnion(output["data"] as? [Int] ?? [])
                }
            }
            return seen
        }
        let before = try await pids()
        // Replacements load in the background; meanwhile a model with no worker answers 503.
        func awaitWorkers() async throws {
            for _ in 0..<100 {
                if try await running.request("GET", "/metrics").text.contains(#"vessel_backend_workers{model="faulty",version="1"} 2"#) { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            Issue.record("the workers were not replaced within 10 s")
        }

        let raised = try await running.infer(Self.request(mode: "raise"), model: "faulty")
        #expect(raised.status == 500 && raised.text.contains("ValueError: asked to raise"), "\(raised.text)")
        #expect(try await pids().isSubset(of: before), "a worker whose code raised lives on")

        let crashed = try await running.infer(Self.request(mode: "segfault"), model: "faulty")
        #expect(crashed.status == 500 && crashed.text.contains("signal 11 (SIGSEGV)"), "\(crashed.text)")

        try await awaitWorkers()
        let garbage = try await running.infer(Self.request(mode: "garbage"), model: "faulty")
        #expect(garbage.status == 500 && garbage.text.contains("broke the protocol"), "\(garbage.text)")

        try await awaitWorkers()
        let leaked = try await running.infer(Self.request(mode: "leak"), model: "faulty")
        #expect(leaked.status == 500 && leaked.text.contains("over runtime.max_worker_memory (200 MiB)"), "\(leaked.text)")

        // Both replacements loaded (the metrics say so), a hung worker: its request gets 504 at serving.timeout_ms, and meanwhile the other
        // worker answers.
        try await awaitWorkers()
        async let hung = running.infer(Self.request(mode: "hang"), model: "faulty")
        try await Task.sleep(for: .milliseconds(300))
        let during = try await running.infer(Self.request(mode: "ok"), model: "faulty")
        #expect(during.status == 200, "\(during.text)")
        let hungResponse = try await hung
        #expect(hungResponse.status == 504, "\(hungResponse.text)")

        // Replacements load in the background; once they have, every request is answered by
        // workers that were not there before the crashes.
        var after: Set<Int> = []
        for _ in 0..<50 {
            after = try await pids()
            if after.count == 2, after.isDisjoint(with: before) { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(after.count == 2 && after.isDisjoint(with: before), "before \(before), after \(after)")
        let health = try await running.request("GET", "/v2/health/ready")
        #expect(health.status == 200)
        let metrics = try await running.request("GET", "/metrics")
        #expect(metrics.text.contains(#"vessel_backend_worker_restarts_total{model="faulty",version="1"} 4"#), "\(metrics.text)")
        #expect(metrics.text.contains(#"vessel_backend_workers{model="faulty",version="1"} 2"#), "\(metrics.text)")
    }

    @Test("a predictor whose setup raises, a wrong Python version or a missing requirement stops `vessel predict` with the reason")
    func loadFailures() throws {
        let home = try TestSupport.makeTemporaryDirectory("python-load")
        defer { TestSupport.remove(home) }
        let directory = try Self.writePredictor()
        defer { TestSupport.remove(directory) }
        let yaml = try String(contentsOfFile: directory + "/vessel.yaml", encoding: .utf8)
        let environment = ["VESSEL_HOME": home, "VESSEL_PYTHON": TestSupport.python]
        let arguments = ["predict", directory, "-i", "x=[[1,2,3]]", "-i", "mode=[\"ok\"]"]

        try TestSupport.write(yaml.replacingOccurrences(of: "backend: python", with: "backend: python\n  python: \"3.4\""), to: directory + "/vessel.yaml")
        var result = try TestSupport.run(TestSupport.vesselBinary, arguments, environment: environment)
        #expect(result.status != 0 && result.standardError.contains("runtime.python is 3.4, but"), "\(result.standardError)")

        try TestSupport.write(yaml.replacingOccurrences(of: "requirements: [", with: "requirements: [no-such-package==1.0, "), to: directory + "/vessel.yaml")
        result = try TestSupport.run(TestSupport.vesselBinary, arguments, environment: environment)
        #expect(result.status != 0 && result.standardError.contains("no-such-package==1.0 is not installed"), "\(result.standardError)")

        try TestSupport.write(yaml, to: directory + "/vessel.yaml")
        try TestSupport.write("FAIL_SETUP = True\n", to: directory + "/settings.py")
        result = try TestSupport.run(TestSupport.vesselBinary, arguments, environment: environment)
        #expect(result.status != 0 && result.standardError.contains("RuntimeError: setup was told to fail"), "\(result.standardError)")
    }

    @Test(
        "a Cog project imported with `vessel import cog` answers Cog's /predictions as Cog does: a file in, defaults for what is left out, 422 for a constraint; OIP v2 too"
    )
    func cogProject() async throws {
        let scratch = try TestSupport.makeTemporaryDirectory("cog-project")
        defer { TestSupport.remove(scratch) }
        let project = scratch + "/resize"
        try TestSupport.write(
            """
            build:
              python_version: "3.11"
              python_packages: ["numpy==2.4.6", "pillow==12.3.0"]
            predict: "predict.py:Predictor"

            """, to: project + "/cog.yaml")
        try TestSupport.write(
            """
            import os
            import numpy as np
            from PIL import Image
            from cog import BasePredictor, Input, Path

            class Predictor(BasePredictor):
                def setup(self):
                    self.weights = np.load("weights.npy")

                def predict(
                    self,
                    image: Path = Input(description="A picture"),
                    scale: float = Input(description="Resize factor", default=0.5, ge=0.1, le=2.0),
                    mode: str = Input(default="L", choices=["L", "RGB"]),
                ) -> str:
                    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen.txt"), "a") as seen:
                        seen.write(str(image) + "\\n")
                    picture = Image.open(image).convert(mode)
                    resized = picture.resize((max(1, int(picture.size[0] * scale)), max(1, int(picture.size[1] * scale))))
                    mean = float(np.asarray(resized, dtype=np.float64).mean() * self.weights[0])
                    return f"{resized.size[0]}x{resized.size[1]} {mode} {mean:.3f}"

            """, to: project + "/predict.py")
        let png = TestSupport.packageRoot + "/Examples/digits/examples/7.png"
        let expected = try TestSupport.python(
            """
            import numpy as np
            from PIL import Image
            np.save("\(project)/weights.npy", np.array([2.0]))
            for scale, mode in ((0.5, "L"), (2.0, "RGB")):
                p = Image.open("\(png)").convert(mode)
                r = p.resize((max(1, int(p.size[0] * scale)), max(1, int(p.size[1] * scale))))
                print(f"{r.size[0]}x{r.size[1]} {mode} {float(np.asarray(r, dtype=np.float64).mean() * 2.0):.3f}")
            """
        ).split(separator: "\n").map(String.init)
        let imported = try await TestSupport.run(TestSupport.vesselBinary, ["import", "cog", project, "-o", scratch + "/model"])
        #expect(imported.status == 0, "\(imported.standardError)")
        let yaml = try String(contentsOfFile: scratch + "/model/vessel.yaml", encoding: .utf8)
        #expect(yaml.contains(#"{name: "scale", dtype: float64, shape: [-1], optional: true, description: "Resize factor"}"#), "\(yaml)")
        #expect(yaml.contains(#""cog==0.23.1""#) && yaml.contains(#"predictor: "predict.py:Predictor""#), "\(yaml)")

        let running = try await RunningServer.start([scratch + "/model"])
        defer { Task { await running.stop() } }
        let image = "data:image/png;base64," + (FileManager.default.contents(atPath: png)?.base64EncodedString() ?? "")
        func predict(_ input: String) async throws -> LoopbackClient.Response {
            try await running.request("POST", "/predictions", headers: ["Content-Type": "application/json"], body: Array(#"{"input":{\#(input)}}"#.utf8))
        }
        let defaults = try await predict(#""image":"\#(image)""#)
        #expect(defaults.status == 200 && jsonObject(defaults)["output"] as? String == expected[0], "\(defaults.text)")
        let given = try await predict(#""image":"\#(image)","scale":2.0,"mode":"RGB""#)
        #expect(given.status == 200 && jsonObject(given)["output"] as? String == expected[1], "\(given.text)")
        let tooLarge = try await predict(#""image":"\#(image)","scale":5.0"#)
        #expect(tooLarge.status == 422 && tooLarge.text.contains("input `scale` must be at most 2.0"), "\(tooLarge.text)")
        let notAChoice = try await predict(#""image":"\#(image)","mode":"CMYK""#)
        #expect(notAChoice.status == 422 && notAChoice.text.contains("must be one of"), "\(notAChoice.text)")
        let missing = try await predict(#""scale":1.0"#)
        #expect(missing.status == 422 && missing.text.contains("missing input `image`"), "\(missing.text)")
        let oip = try await running.infer(#"{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","data":["\#(image)"]}]}"#, model: "resize")
        #expect(oip.status == 200 && (jsonObject(oip)["outputs"] as? [[String: Any]])?.first?["data"] as? [String] == [expected[0]], "\(oip.text)")
        // Each request's image went to a file of its own; every one but the last is gone.
        let seen = ((try? String(contentsOfFile: scratch + "/model/seen.txt", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        #expect(Set(seen).count >= 3, "\(seen)")
        #expect(seen.dropLast().allSatisfy { !FileManager.default.fileExists(atPath: $0) }, "input files left behind: \(seen)")
    }

    /// A predictor that does what its `mode` input says.
    static func writePredictor() throws -> String {
        let directory = try TestSupport.makeTemporaryDirectory("python-predictor")
        let numpyVersion = try TestSupport.python("import numpy; print(numpy.__version__)").trimmingCharacters(in: .whitespacesAndNewlines)
        try TestSupport.write(
            """
            import ctypes, os, time
            import numpy as np

            LEAK = []

            class Predictor:
                def setup(self):
                    import settings
                    if getattr(settings, "FAIL_SETUP", False):
                        raise RuntimeError("setup was told to fail")
                    self.scale = float(np.load("weights.npz")["scale"])
                    self.setups = getattr(self, "setups", 0) + 1

                def predict(self, x, mode):
                    mode = mode.reshape(-1)[0]
                    if mode == "raise":
                        raise ValueError("asked to raise")
                    if mode == "segfault":
                        ctypes.string_at(0)
                    if mode == "hang":
                        time.sleep(600)
                    if mode == "leak":
                        LEAK.append(b"\\x01" * (300 << 20))
                        time.sleep(600)
                    if mode == "garbage":
                        os.write(4, b"\\xff" * 64)
                        time.sleep(600)
                    if mode == "print":
                        print("this line goes to the server's log " * 20)
                    return {"y": x * self.scale, "echo": np.array([mode.upper()]), "setups": np.array([self.setups]), "pid": np.array([os.getpid()])}

            """, to: directory + "/predict.py")
        try TestSupport.write("FAIL_SETUP = False\n", to: directory + "/settings.py")
        try TestSupport.python("import numpy; numpy.savez('\(directory)/weights.npz', scale=numpy.float32(2))")
        try TestSupport.write(
            """
            name: faulty
            version: "1"
            model: {format: numpy, file: weights.npz}
            runtime:
              backend: python
              predictor: predict.py:Predictor
              requirements: [numpy==\(numpyVersion)]
              max_worker_memory: 200Mi
            files:
              - {path: settings.py, role: code}
            serving: {max_concurrency: 2, timeout_ms: 8000}
            signature:
              inputs:
                - {name: x, dtype: float32, shape: [-1, 3]}
                - {name: mode, dtype: string, shape: [1]}
              outputs:
                - {name: y, dtype: float32, shape: [-1, 3]}
                - {name: echo, dtype: string, shape: [1]}
                - {name: setups, dtype: int64, shape: [1]}
                - {name: pid, dtype: int64, shape: [1]}
            examples:
              - name: doubles
                inputs: {x: [[1, 2, 3]], mode: ["ok"]}
                outputs: {y: [[2, 4, 6]], echo: ["OK"]}

            """, to: directory + "/vessel.yaml")
        return directory
    }

    static func request(mode: String) -> String {
        #"{"inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]},{"name":"mode","shape":[1],"datatype":"BYTES","data":["\#(mode)"]}]}"#
    }
}
