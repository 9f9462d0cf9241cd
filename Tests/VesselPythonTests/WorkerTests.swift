import Foundation
import Testing
import VesselTensor
import VesselTestSupport
@testable import VesselPython

@Suite("Python worker frames and pool")
struct WorkerTests {
    /// An answer frame whose header lists `tensors` over `payload`.
    func answer(_ tensors: [WorkerFrame.TensorHeader], payload: [UInt8]) throws -> WorkerFrame {
        struct Header: Encodable { var ok = true; var tensors: [WorkerFrame.TensorHeader] }
        return WorkerFrame(header: Array(try JSONEncoder().encode(Header(tensors: tensors))), payload: payload)
    }

    @Test("a request's tensors come back equal when read as an answer: numbers, text and binary strings")
    func roundTrip() throws {
        let inputs: [String: Tensor] = [
            "b": Tensor([1.5, -2, 3.25, 0] as [Float], shape: [2, 2]),
            "a": Tensor([Int64.max, -1, 0], shape: [3]),
            "c": Tensor(strings: ["héllo", "", BytesElement.string([0, 255, 10])], shape: [3])
        ]
        let request = try WorkerFrame.request(inputs)
        struct Sent: Decodable { var tensors: [WorkerFrame.TensorHeader] }
        let header = try JSONDecoder().decode(Sent.self, from: Data(request.header))
        #expect(header.tensors.map(\.name) == ["a", "b", "c"], "in name order")
        #expect(header.tensors.map(\.nbytes) == [24, 16, 24])  // "héllo" is 6 bytes; each element has a 5-byte prefix
        // The length prefix on the pipe: header length (u32 LE), payload length (u64 LE).
        let bytes = request.bytes
        #expect(Array(bytes[0..<4]) == withUnsafeBytes(of: UInt32(request.header.count).littleEndian, Array.init))
        #expect(Array(bytes[4..<12]) == withUnsafeBytes(of: UInt64(request.payload.count).littleEndian, Array.init))
        #expect(bytes.count == 12 + request.header.count + request.payload.count)

        let back = try answer(header.tensors, payload: request.payload)
            .tensors(header.tensors, declared: ["a": .int64, "b": .float32, "c": .string])
        #expect(back["a"]?.scalars(as: Int64.self) == [Int64.max, -1, 0])
        #expect(back["b"]?.scalars(as: Float.self) == [1.5, -2, 3.25, 0] && back["b"]?.shape == [2, 2])
        #expect(back["c"]?.strings == inputs["c"]?.strings)
    }

    @Test("a worker's answer is not trusted: each malformed payload is refused with what is wrong")
    func hostileAnswers() throws {
        let four = [UInt8](repeating: 0, count: 16)
        func refusal(_ headers: [WorkerFrame.TensorHeader], _ payload: [UInt8], declared: [String: DType] = ["y": .float32]) -> String {
            do {
                _ = try answer(headers, payload: payload).tensors(headers, declared: declared)
                return "accepted"
            } catch {
                return "\(error)"
            }
        }
        let y = WorkerFrame.TensorHeader(name: "y", dtype: "float32", shape: [4], nbytes: 16)
        #expect(refusal([y], four) == "accepted")
        #expect(refusal([y], four, declared: ["y": .int64]).contains("answered output `y` as float32, which was not asked for"))
        #expect(refusal([.init(name: "z", dtype: "float32", shape: [4], nbytes: 16)], four).contains("answered output `z`"))
        #expect(refusal([.init(name: "y", dtype: "float32", shape: [4], nbytes: 32)], four).contains("does not fit its payload"))
        #expect(refusal([.init(name: "y", dtype: "float32", shape: [4], nbytes: -1)], four).contains("does not fit its payload"))
        #expect(refusal([.init(name: "y", dtype: "float32", shape: [Int.max, 2], nbytes: 16)], four).contains("does not fit its payload"))
        #expect(refusal([.init(name: "y", dtype: "float32", shape: [3], nbytes: 16)], four).contains("has 16 bytes for shape [3]"))
        #expect(refusal([.init(name: "y", dtype: "float32", shape: [2], nbytes: 8)], four).contains("bytes past its tensors"))
        let text = WorkerFrame.TensorHeader(name: "t", dtype: "string", shape: [2], nbytes: 7)
        #expect(refusal([text], [0, 2, 0, 0, 0, 0x68, 0x69], declared: ["t": .string]).contains("output `t` ends early"))
        #expect(
            refusal([.init(name: "t", dtype: "string", shape: [1], nbytes: 7)], [0, 9, 0, 0, 0, 0x68, 0x69], declared: ["t": .string])
                .contains("output `t` ends early"))
        #expect(
            refusal([.init(name: "t", dtype: "string", shape: [1], nbytes: 8)], [0, 2, 0, 0, 0, 0x68, 0x69, 0], declared: ["t": .string])
                .contains("bytes past its elements"))
        #expect(throws: WorkerError.self) { try WorkerFrame(header: Array("not json".utf8), payload: []).answer() }
    }

    @Test("a pool of real workers: answers, a raise keeps the worker, a crash replaces it and the next request is answered")
    func pool() throws {
        let directory = try TestSupport.makeTemporaryDirectory("python-pool")
        defer { TestSupport.remove(directory) }
        try TestSupport.write(
            """
            import os
            import numpy as np

            class Predictor:
                def setup(self):
                    self.scale = np.float32(2)

                def predict(self, x):
                    if x[0] < 0:
                        raise ValueError("negative first value")
                    if x[0] == 13:
                        os._exit(3)
                    return {"y": x * self.scale}
            """, to: directory + "/predict.py")
        let numpy = try TestSupport.python("import numpy; print(numpy.__version__)").trimmingCharacters(in: .whitespacesAndNewlines)
        let model = PythonModelConfiguration(
            kind: .predictor, directory: directory, file: "predict.py", predictor: "predict.py:Predictor",
            requirements: ["numpy==\(numpy)"], python: nil, outputs: [.init(name: "y", dtype: .float32)])
        let pool = try PythonWorkerPool(
            model: model, size: 1, interpreter: TestSupport.python, environment: ProcessInfo.processInfo.environment,
            loadTimeout: .seconds(120))
        defer { pool.close() }
        func predict(_ values: [Float]) throws(WorkerError) -> [Float]? {
            try pool.predict(["x": Tensor(values, shape: [values.count])], declared: ["y": .float32], stop: { nil })["y"]?.scalars(as: Float.self)
        }
        #expect(try predict([1, 2.5]) == [2, 5])
        do {
            _ = try predict([-1])
            Issue.record("a raise was answered")
        } catch {
            guard case .raised(let message, let traceback) = error else { Issue.record("\(error)"); return }
            #expect(message.contains("ValueError") && message.contains("negative first value"))
            #expect(traceback.contains("predict.py"))
        }
        #expect(pool.restarts == 0, "a raise keeps its worker")
        do {
            _ = try predict([13])
            Issue.record("a crash was answered")
        } catch {
            guard case .died = error else { Issue.record("\(error)"); return }
        }
        // The replacement loads in the background; the next request waits for it.
        #expect(try predict([3]) == [6])
        #expect(pool.restarts == 1)
    }
}
