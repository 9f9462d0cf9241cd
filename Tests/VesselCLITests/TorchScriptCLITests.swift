import Foundation
import Testing
import VesselServer
import VesselTestSupport

/// The python backend's TorchScript loader on modules real `torch` traced and scripted, run with
/// no predictor code and compared with the same modules called in Python. The interpreter is the
/// torch venv scripts/onnx-test-data.sh makes.
@Suite("TorchScript models")
struct TorchScriptCLITests {
    static let python = TestSupport.packageRoot + "/.build/venv-torch/bin/python"

    @Test(
        "a traced CNN (inputs by position) and a scripted module (inputs by name, dict outputs, bfloat16) load without code, over the CLI and OIP v2, and give what torch gives"
    )
    func tracedAndScripted() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.python), "scripts/onnx-test-data.sh makes .build/venv-torch")
        let scratch = try TestSupport.makeTemporaryDirectory("torchscript")
        defer { TestSupport.remove(scratch) }
        // From a file: torch.jit.script reads the module's source.
        try TestSupport.write(
            """
            import json, os, torch
            from importlib import metadata
            from typing import Dict
            torch.manual_seed(0)
            class Net(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
                    self.head = torch.nn.Linear(6, 4)
                def forward(self, x):
                    y = torch.relu(self.conv(x)).mean(dim=(2, 3))
                    return self.head(y)
            class Mixer(torch.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.weight = torch.nn.Parameter(torch.randn(3, 2))
                def forward(self, a: torch.Tensor, b: torch.Tensor, scale: float = 2.0) -> Dict[str, torch.Tensor]:
                    mixed = a @ self.weight * scale
                    return {"mixed": mixed, "shifted": b + 1, "rounded": mixed.to(torch.bfloat16)}
            image = torch.randn(2, 3, 8, 8)
            a = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
            b = torch.tensor([7, -3], dtype=torch.int64)
            net = torch.jit.trace(Net().eval(), image)
            mixer = torch.jit.script(Mixer())
            for name, module in [("net", net), ("mixer", mixer)]:
                os.makedirs(f"\(scratch)/{name}", exist_ok=True)
                torch.jit.save(module, f"\(scratch)/{name}/model.pt")
            with torch.no_grad():
                mixed = mixer(a, b)
                print(json.dumps({"image": image.tolist(), "logits": net(image).flatten().tolist(),
                                  "mixed": mixed["mixed"].flatten().tolist(), "shifted": mixed["shifted"].tolist(),
                                  "rounded": mixed["rounded"].float().flatten().tolist(), "version": metadata.version("torch")}))

            """, to: scratch + "/make.py")
        let made = try await TestSupport.run(Self.python, ["-W", "ignore", scratch + "/make.py"])
        #expect(made.status == 0, "\(made.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data((made.standardOutput.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        let version = try #require(report["version"] as? String)
        let image = try JSONSerialization.data(withJSONObject: try #require(report["image"]))
        let environment = ["VESSEL_PYTHON": Self.python, "VESSEL_HOME": scratch + "/home"]

        // Traced: forward's parameter is `x`, the signature says `image`, so by position.
        let net = """
            name: net
            version: "1"
            model: {format: torchscript, file: model.pt}
            runtime:
              backend: python
              requirements: [torch==\(version), numpy==2.4.6]
            signature:
              inputs: [{name: image, dtype: float32, shape: [-1, 3, 8, 8]}]
              outputs: [{name: logits, dtype: float32, shape: [-1, 4]}]

            """
        try TestSupport.write(net, to: scratch + "/net/vessel.yaml")
        let predicted = try await TestSupport.run(
            TestSupport.vesselBinary, ["predict", scratch + "/net", "--json", "-i", "image=" + String(decoding: image, as: UTF8.self)],
            environment: environment)
        #expect(predicted.status == 0, "\(predicted.standardError)")
        let logits = Self.outputs(predicted.standardOutput)["logits"] ?? []
        let expected = report["logits"] as? [Double] ?? []
        #expect(logits.count == 8 && zip(logits, expected).allSatisfy { abs($0 - $1) <= 1e-5 }, "\(logits) vs \(expected)")

        // Scripted: the signature names forward's parameters in another order; `scale` keeps its
        // default. Packed without requirements (a lock would vendor PyPI torch's GBs of CUDA
        // wheels), served from the store on the torch venv.
        try TestSupport.write(
            """
            name: mixer
            version: "1"
            model: {format: torchscript, file: model.pt}
            runtime:
              backend: python
            signature:
              inputs:
                - {name: b, dtype: int64, shape: [-1]}
                - {name: a, dtype: float32, shape: [-1, 3]}
              outputs:
                - {name: rounded, dtype: float32, shape: [-1, 2]}
                - {name: shifted, dtype: int64, shape: [-1]}
                - {name: mixed, dtype: float32, shape: [-1, 2]}

            """, to: scratch + "/mixer/vessel.yaml")
        let packed = try await TestSupport.run(TestSupport.vesselBinary, ["pack", scratch + "/mixer", "--no-test"], environment: environment)
        #expect(packed.status == 0, "\(packed.standardError)")
        let server = try ServeProcess(["mixer:1"], home: scratch + "/home", environment: environment)
        defer { server.process.terminate() }
        let port = try server.waitForReady()
        let body = #"""
            {"inputs": [{"name": "a", "datatype": "FP32", "shape": [2, 3], "data": [0.5, -1.0, 2.0, 1.5, 0.25, -0.75]},
                        {"name": "b", "datatype": "INT64", "shape": [2], "data": [7, -3]}]}
            """#
        let answer = try LoopbackClient.request(
            "POST", port: port, path: "/v2/models/mixer/infer", headers: ["Content-Type": "application/json"], body: Array(body.utf8))
        #expect(answer.status == 200, "\(answer.text) \(server.standardError)")
        let outputs = Self.outputs(answer.text)
        for name in ["mixed", "shifted", "rounded"] {
            let want = report[name] as? [Double] ?? []
            let got = outputs[name] ?? []
            #expect(got.count == want.count && zip(got, want).allSatisfy { abs($0 - $1) <= 1e-6 }, "\(name): \(got) vs \(want)")
        }

        // A signature that cannot be forward's arguments is refused at load, naming them.
        try TestSupport.write(
            net.replacingOccurrences(
                of: "inputs: [{name: image, dtype: float32, shape: [-1, 3, 8, 8]}]",
                with: "inputs: [{name: image, dtype: float32, shape: [-1, 3, 8, 8]}, {name: mask, dtype: float32, shape: [-1]}]"),
            to: scratch + "/net/vessel.yaml")
        let refused = try await TestSupport.run(
            TestSupport.vesselBinary, ["predict", scratch + "/net", "-i", "image=" + String(decoding: image, as: UTF8.self), "-i", "mask=[1,1]"],
            environment: environment)
        #expect(
            refused.status != 0 && refused.standardError.contains("the TorchScript forward() takes 1 inputs (x) and the signature declares 2 (image, mask)"),
            "\(refused.standardError)")
    }

    /// Each output's flat data, from `vessel predict --json` or an OIP v2 answer.
    static func outputs(_ text: String) -> [String: [Double]] {
        let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        var found: [String: [Double]] = [:]
        for output in json?["outputs"] as? [[String: Any]] ?? [] {
            if let name = output["name"] as? String { found[name] = (output["data"] as? [NSNumber])?.map(\.doubleValue) }
        }
        return found
    }
}
