import Foundation
import Testing
import VesselManifest
import VesselProcessing
import VesselTensor

private func spec(_ name: String, _ dtype: DType, _ shape: [Dim]) -> TensorSpec { TensorSpec(name: name, dtype: dtype, shape: shape) }
private let batch = Dim.dynamic(name: "batch")
private func step(_ type: String, _ parameters: [String: Value]) -> ProcessingStep { ProcessingStep(type: type, parameters: parameters) }

/// iris's graph signature: X [batch, 4] → label [batch] int64, probabilities [batch, 3].
private let iris = Signature(
    inputs: [spec("X", .float32, [batch, .fixed(4)])],
    outputs: [spec("label", .int64, [batch]), spec("probabilities", .float32, [batch, .fixed(3)])])

private func floats(_ tensor: Tensor) -> [Float] { tensor.scalars(as: Float.self) }

@Suite("processing plan")
struct ProcessingPlanTests {
    @Test("labels with `as` adds a string output and keeps the one it read; the served signature shows both")
    func labelsServedSignature() throws {
        let plan = try ProcessingPlan(
            signature: iris, preprocess: [],
            postprocess: [
                step("labels", ["output": .string("label"), "file": .string("labels.txt"), "as": .string("species")])
            ]
        ).loadingFiles { _ in Array("setosa\nversicolor\nvirginica\n".utf8) }
        #expect(plan.served.inputs == iris.inputs)
        #expect(plan.served.outputs.map(\.name) == ["label", "probabilities", "species"])
        #expect(plan.served.output(named: "species")?.dtype == .string)
        #expect(plan.served.output(named: "species")?.shape == [batch])
        let out = try plan.postprocess(["label": Tensor([Int64(2), 0, 1], shape: [3]), "probabilities": Tensor([Float](repeating: 0, count: 9), shape: [3, 3])])
        #expect(out["species"]?.strings == ["virginica", "setosa", "versicolor"])
        #expect(out["label"]?.integers() == [2, 0, 1])
        #expect(throws: ProcessingError.self) { try plan.postprocess(["label": Tensor([Int64(3)], shape: [1])]) }
    }

    @Test("labels on class scores take the argmax of the last axis; a label file of the wrong length is refused at load")
    func labelsOnScores() throws {
        let plan = try ProcessingPlan(
            signature: iris, preprocess: [],
            postprocess: [
                step("labels", ["output": .string("probabilities"), "file": .string("l.txt"), "as": .string("name")])
            ])
        #expect(plan.served.output(named: "name")?.shape == [batch])
        let loaded = try plan.loadingFiles { _ in Array("a\r\nb\r\nc".utf8) }
        let out = try loaded.postprocess(["probabilities": Tensor([Float(0.1), 0.7, 0.2, 0.5, 0.5, 0], shape: [2, 3])])
        #expect(out["name"]?.strings == ["b", "a"])
        #expect(throws: ProcessingError.self) { try plan.loadingFiles { _ in Array("a\nb\n".utf8) } }
    }

    @Test("softmax, sigmoid, argmax, top-k (ties to the lower index), threshold, scale, clip, cast compute what numpy would")
    func postKernels() throws {
        let logits = Signature(inputs: iris.inputs, outputs: [spec("logits", .float32, [batch, .fixed(4)])])
        let x = Tensor([Float(1), 2, 3, 3, -1, 0, 0, 1], shape: [2, 4])
        func run(_ steps: [ProcessingStep]) throws -> [String: Tensor] {
            try ProcessingPlan(signature: logits, preprocess: [], postprocess: steps).postprocess(["logits": x])
        }
        let soft = floats(try run([step("softmax", ["output": .string("logits")])])["logits"]!)
        let e: [Double] = [1, 2, 3, 3].map { exp($0 - 3) }
        let total = e.reduce(0, +)
        for k in 0..<4 { #expect(abs(Double(soft[k]) - e[k] / total) < 1e-6) }
        #expect(abs(soft[4...].reduce(0, +) - 1) < 1e-6)
        let sig = floats(try run([step("sigmoid", ["output": .string("logits")])])["logits"]!)
        #expect(abs(sig[0] - Float(1 / (1 + exp(-1.0)))) < 1e-6 && sig[5] == 0.5)
        let arg = try run([step("argmax", ["output": .string("logits"), "as": .string("best")])])
        #expect(arg["best"]?.integers() == [2, 3] && arg["best"]?.shape == [2] && arg["logits"]?.dtype == .float32)
        let top = try run([step("topk", ["output": .string("logits"), "k": .int(2), "as": .string("top")])])
        #expect(top["top"]?.integers() == [2, 3, 3, 1] && top["top"]?.shape == [2, 2])
        #expect(top["top_scores"].map(floats) == [3, 3, 1, 0])
        let over = try run([step("threshold", ["output": .string("logits"), "value": .double(1), "as": .string("hot")])])
        #expect(over["hot"]?.scalars(as: Bool.self) == [false, true, true, true, false, false, false, false])
        let scaled = try run([
            step("scale", ["output": .string("logits"), "factor": .double(2), "offset": .double(1)]),
            step("clip", ["output": .string("logits"), "min": .double(0), "max": .double(5)])
        ])
        #expect(floats(scaled["logits"]!) == [3, 5, 5, 5, 0, 1, 1, 3])
        let cast = try run([step("cast", ["output": .string("logits"), "dtype": .string("int64"), "as": .string("whole")])])
        #expect(cast["whole"]?.dtype == .int64 && cast["whole"]?.integers() == [1, 2, 3, 3, -1, 0, 0, 1])
    }

    @Test("normalize per channel (NCHW axis 1, NHWC axis -1), transpose, and cast turn what clients send into what the model takes")
    func preKernels() throws {
        let image = Signature(inputs: [spec("pixels", .float16, [batch, .fixed(2), .fixed(1), .fixed(2)])], outputs: iris.outputs)
        let plan = try ProcessingPlan(
            signature: image,
            preprocess: [
                step("transpose", ["input": .string("pixels"), "perm": .array([.int(0), .int(3), .int(1), .int(2)])]),
                step("normalize", ["input": .string("pixels"), "mean": .array([.double(1), .double(2)]), "std": .array([.double(2), .double(4)])]),
                step("cast", ["input": .string("pixels"), "dtype": .string("float16")])
            ], postprocess: [])
        // Clients send NHWC float32: [batch, 1, 2, 2]; the model takes NCHW float16.
        #expect(plan.served.inputs[0].dtype == .float32)
        #expect(plan.served.inputs[0].shape == [batch, .fixed(1), .fixed(2), .fixed(2)])
        // pixel (0,0): channels 3, 6; pixel (0,1): channels 5, 10.
        let sent = Tensor([Float(3), 6, 5, 10], shape: [1, 1, 2, 2])
        let model = try plan.preprocess(["pixels": sent])["pixels"]!
        #expect(model.dtype == .float16 && model.shape == [1, 2, 1, 2])
        #expect(model.doubles() == [1, 2, 1, 2])
    }

    @Test(
        "steps that do not fit are refused at compile time, naming the step",
        arguments: [
            ([], [step("softmax", ["output": .string("label")])], "floating-point"),
            ([], [step("argmax", ["output": .string("probabilities"), "axis": .int(0)])], "batch dimension"),
            ([], [step("topk", ["output": .string("probabilities"), "k": .int(4)])], "has 3 entries"),
            ([], [step("argmax", ["output": .string("probabilities"), "as": .string("label")])], "already an output"),
            ([], [step("labels", ["output": .string("nope"), "file": .string("x")])], "neither the model"),
            ([step("normalize", ["input": .string("X"), "mean": .array([.double(0), .double(0), .double(0)]), "std": .double(1)])], [], "axis 1 of `X` has 4"),
            ([step("cast", ["input": .string("X"), "dtype": .string("int64")])], [], "takes float32"),
            ([step("reshape", ["input": .string("X"), "shape": .array([.int(4)])])], [], "not supported yet"),
            ([step("image", ["input": .string("X"), "size": .array([.int(224), .int(224)])])], [], "writes a rank-4 batch of images"),
            ([step("tokenize", ["input": .string("X"), "file": .string("tokenizer.json")])], [], "writes integer token ids, but `X` is float32"),
            ([], [step("pool", ["output": .string("probabilities")])], "pools [batch, sequence, hidden]"),
            ([step("transpose", ["input": .string("X"), "perm": .array([.int(0), .int(0)])])], [], "each axis")
        ] as [([ProcessingStep], [ProcessingStep], String)])
    func refused(pre: [ProcessingStep], post: [ProcessingStep], message: String) {
        #expect {
            _ = try ProcessingPlan(signature: iris, preprocess: pre, postprocess: post)
        } throws: { error in
            "\(error)".contains(message) && "\(error)".contains("step 1 (`")
        }
    }

    @Test("a client tensor a preprocess step cannot take is the client's error, named")
    func runtimeMismatch() throws {
        let dynamic = Signature(inputs: [spec("X", .float32, [batch, .dynamic(name: nil)])], outputs: iris.outputs)
        let plan = try ProcessingPlan(
            signature: dynamic,
            preprocess: [
                step("normalize", ["input": .string("X"), "mean": .array([.double(0), .double(1)]), "std": .double(1)])
            ], postprocess: [])
        #expect {
            _ = try plan.preprocess(["X": Tensor([Float](repeating: 1, count: 6), shape: [2, 3])])
        } throws: { error in
            guard let error = error as? ProcessingError else { return false }
            return error.stage == .pre && error.description.contains("`mean` has 2 values, but axis 1 of `X` has 3")
        }
    }

    @Test("columns: named inputs (numbers, one-hot and index categories, fills) assemble the model's feature tensor in order")
    func columns() throws {
        let table = Signature(inputs: [spec("X", .float32, [batch, .fixed(6)])], outputs: iris.outputs)
        let plan = try ProcessingPlan(
            signature: table,
            preprocess: [
                step(
                    "columns",
                    [
                        "input": .string("X"),
                        "columns": .array([
                            .string("age"),
                            .object([
                                "name": .string("color"), "categories": .array([.string("red"), .string("green"), .string("blue")]), "fill": .string("green")
                            ]),
                            .object(["name": .string("size"), "categories": .array([.string("S"), .string("M"), .string("L")]), "encode": .string("index")]),
                            .object(["name": .string("height"), "fill": .double(1.5)])
                        ])
                    ]),
                step("scale", ["input": .string("X"), "factor": .double(2)])
            ], postprocess: [])
        #expect(plan.served.inputs.map(\.name) == ["age", "color", "size", "height"])
        #expect(plan.served.inputs.map(\.dtype) == [.float32, .string, .string, .float32])
        #expect(plan.served.inputs.allSatisfy { $0.shape == [batch] })
        let x = try plan.preprocess([
            "age": Tensor([Float(30), 41], shape: [2]), "color": Tensor(strings: ["blue", ""], shape: [2]),
            "size": Tensor(strings: ["L", "S"], shape: [2]), "height": Tensor([Float.nan, 1.8], shape: [2])
        ])
        #expect(x.count == 1 && x["X"]?.shape == [2, 6])
        // Then scaled by 2: [age, red, green, blue, size index, height].
        #expect(x["X"].map(floats) == [60, 0, 0, 2, 4, 3, 82, 0, 2, 0, 0, 3.6])
        #expect {
            _ = try plan.preprocess([
                "age": Tensor([Float(1)], shape: [1]), "color": Tensor(strings: ["purple"], shape: [1]),
                "size": Tensor(strings: ["S"], shape: [1]), "height": Tensor([Float(1)], shape: [1])
            ])
        } throws: { "\($0)".contains("column `color` row 0: `purple` is not one of its categories (red, green, blue)") }
        #expect {
            _ = try ProcessingPlan(
                signature: iris, preprocess: [step("columns", ["input": .string("X"), "columns": .array([.string("a"), .string("b")])])],
                postprocess: [])
        } throws: { "\($0)".contains("the columns make 2 features, but `X` takes 4") }
    }
}
