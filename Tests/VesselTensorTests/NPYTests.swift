import Foundation
import Testing
import VesselTensor
import VesselTestSupport

@Suite("npy files")
struct NPYTests {
    static let cases: [(String, Tensor)] = [
        ("float32", Tensor([Float(1.5), -2, .infinity, 0], shape: [2, 2])),
        ("float64", Tensor([Double(1e-300), -3.25, 7], shape: [3])),
        ("float16", Tensor([Float16(0.5), -1, 65504], shape: [3, 1])),
        ("int8", Tensor([Int8(-128), 0, 127], shape: [3])),
        ("int64", Tensor([Int64.min, 0, Int64.max, 42], shape: [2, 2])),
        ("uint16", Tensor([UInt16(0), 65535], shape: [2])),
        ("bool", Tensor([true, false, true], shape: [3])),
        ("scalar", Tensor(scalar: Int32(-7))),
        ("empty", Tensor([Float](), shape: [0, 3])),
        ("string", Tensor(strings: ["héllo", "", "模型"], shape: [3]))
    ]

    @Test("tensors survive a round trip, and numpy reads what we write", arguments: cases.map(\.0))
    func roundTrip(_ name: String) throws {
        let tensor = Self.cases.first { $0.0 == name }!.1
        let bytes = tensor.npy()
        let back = try Tensor(npy: bytes)
        #expect(back.dtype == tensor.dtype)
        #expect(back.shape == tensor.shape)
        if tensor.dtype == .string {
            #expect(back.strings == tensor.strings)
        } else {
            #expect(back.doubles().elementsEqual(tensor.doubles()) { $0 == $1 || ($0.isNaN && $1.isNaN) })
        }
        let path = NSTemporaryDirectory() + "npy-\(UUID().uuidString).npy"
        defer { TestSupport.remove(path) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let described = try TestSupport.python("import numpy as np; a = np.load('\(path)'); print(a.dtype.str, list(a.shape))")
        #expect(described.contains(tensor.shape.description), "\(described)")
    }

    @Test(
        "numpy's files read back: C and Fortran order, big-endian, unicode",
        arguments: [
            ("np.arange(6, dtype='<f4').reshape(2, 3)", "float32", [2, 3], [0.0, 1, 2, 3, 4, 5]),
            ("np.asfortranarray(np.arange(6, dtype='<i8').reshape(2, 3))", "int64", [2, 3], [0.0, 1, 2, 3, 4, 5]),
            ("np.arange(4, dtype='>i4')", "int32", [4], [0.0, 1, 2, 3]),
            ("np.array([1.5, -2], dtype='>f8')", "float64", [2], [1.5, -2]),
            ("np.array([[True, False]])", "bool", [1, 2], [1.0, 0])
        ])
    func numpyFiles(_ expression: String, _ dtype: String, _ shape: [Int], _ values: [Double]) throws {
        let path = NSTemporaryDirectory() + "npy-\(UUID().uuidString).npy"
        defer { TestSupport.remove(path) }
        try TestSupport.python("import numpy as np; np.save('\(path)', \(expression))")
        let tensor = try Tensor(npy: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(tensor.dtype.rawValue == dtype)
        #expect(tensor.shape == shape)
        #expect(tensor.doubles() == values)
    }

    @Test("unicode strings from numpy")
    func numpyStrings() throws {
        let path = NSTemporaryDirectory() + "npy-\(UUID().uuidString).npy"
        defer { TestSupport.remove(path) }
        try TestSupport.python("import numpy as np; np.save('\(path)', np.array(['a', 'héllo', '模型']))")
        let tensor = try Tensor(npy: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        #expect(tensor.strings == ["a", "héllo", "模型"])
    }

    @Test(
        "malformed files get clear errors",
        arguments: [
            ([UInt8]("not numpy".utf8), "no \\x93NUMPY magic"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 9, 0, 0, 0], "version 9"),
            ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 200, 0] + Array("{'descr'".utf8), "header runs past the end")
        ])
    func malformed(_ bytes: [UInt8], _ message: String) {
        #expect { try Tensor(npy: bytes) } throws: { "\($0)".contains(message) }
    }

    @Test("a header that promises more data than there is")
    func truncated() {
        var bytes = Tensor([Float](repeating: 1, count: 16), shape: [16]).npy()
        bytes.removeLast(8)
        #expect { try Tensor(npy: bytes) } throws: { "\($0)".contains("the header promises") }
    }
}
