import Testing
@testable import VesselONNX
import VesselTensor
import VesselTestSupport

@Suite("float32 broadcast kernel")
struct BroadcastKernelTests {
    @Test("matches the generic broadcasting path on random shape pairs", arguments: 0..<4)
    func matchesGeneric(_ kind: Int) throws {
        var generator = SplitMix64(seed: UInt64(kind) + 11)
        for _ in 0..<300 {
            let rank = Int(generator.next() % 5)
            let out = (0..<rank).map { _ in Int(generator.next() % 4) + 1 }
            // Each operand: a suffix of the output shape with some axes set to 1.
            func operand() -> [Int] {
                let drop = rank == 0 ? 0 : Int(generator.next() % UInt64(rank + 1))
                return out.dropFirst(drop).map { generator.next() % 3 == 0 ? 1 : $0 }
            }
            let sa = operand(), sb = operand()
            let a = Tensor((0..<Tensor.count(of: sa)).map { _ in Float(Int(generator.next() % 200) - 100) / 7 }, shape: sa)
            let b = Tensor((0..<Tensor.count(of: sb)).map { _ in Float(Int(generator.next() % 200) + 1) / 9 }, shape: sb)
            let fast = try floatBroadcast(kind, a, b)
            let f: (Float, Float) -> Float = [{ $0 + $1 }, { $0 - $1 }, { $0 * $1 }, { $0 / $1 }][kind]
            let reference = try mapBinary(a, b, Float.self, Float.self, f)
            #expect(fast.shape == reference.shape, "\(sa) ⊙ \(sb)")
            #expect(fast.scalars(as: Float.self) == reference.scalars(as: Float.self), "\(sa) ⊙ \(sb)")
        }
    }
}

@Suite("float16 arithmetic")
struct HalfArithmeticTests {
    @Test(
        "Add, Sub, Mul and Div of float16 give each value widened, computed in float32 and rounded back: one shape, a bias either side, a scalar, a column, a short repeat"
    )
    func widenedAndRounded() throws {
        let directory = try LoaderTests.make(
            """
            for op in ['Add', 'Sub', 'Mul', 'Div']:
                for name, bshape, order in [('same', [3, 2500], ['a', 'b']), ('bias', [2500], ['a', 'b']), ('leading', [1, 2500], ['b', 'a']),
                                            ('scalar', [], ['a', 'b']), ('column', [3, 1], ['b', 'a']), ('short', [1, 1, 10], ['a', 'b'])]:
                    ashape = [3, 250, 10] if name == 'short' else [3, 2500]
                    g = helper.make_graph([helper.make_node(op, order, ['y'])], 'g',
                                          [helper.make_tensor_value_info('a', TensorProto.FLOAT16, ashape),
                                           helper.make_tensor_value_info('b', TensorProto.FLOAT16, bshape)],
                                          [helper.make_tensor_value_info('y', TensorProto.FLOAT16, None)])
                    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 17)]), d + f'/{op}-{name}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        let a = (0..<7500).map { Float16(Float(($0 * 7_919) % 1_009) / 37 - 13) }
        for op in ["Add", "Sub", "Mul", "Div"] {
            let f: (Float, Float) -> Float
            switch op {
            case "Add": f = { $0 + $1 }
            case "Sub": f = { $0 - $1 }
            case "Mul": f = { $0 * $1 }
            default: f = { $0 / $1 }
            }
            // (name, B's shape, B first, A's shape): the one-pass kernel takes all but the
            // column and the short repeat, which go the widening way.
            let cases: [(String, [Int], Bool, [Int])] = [
                ("same", [3, 2500], false, [3, 2500]), ("bias", [2500], false, [3, 2500]), ("leading", [1, 2500], true, [3, 2500]),
                ("scalar", [], false, [3, 2500]), ("column", [3, 1], true, [3, 2500]), ("short", [1, 1, 10], false, [3, 250, 10])
            ]
            for (name, bShape, bFirst, aShape) in cases {
                let b = (0..<Tensor.count(of: bShape)).map { Float16(Float(($0 * 104_729) % 997) / 53 + 0.25) }
                let model = try ONNXModel(path: directory + "/\(op)-\(name).onnx")
                let y = try #require(try model.run(["a": Tensor(a, shape: aShape), "b": Tensor(b, shape: bShape)])["y"])
                let expected = (0..<7500).map { i -> UInt16 in
                    let z = Float(name == "column" ? b[i / 2500] : b[i % b.count])
                    let x = Float(a[i])
                    return Float16(bFirst ? f(z, x) : f(x, z)).bitPattern
                }
                #expect(y.shape == aShape && y.scalars(as: Float16.self).map(\.bitPattern) == expected, "\(op) \(name)")
            }
        }
    }
}

@Suite("MaxPool fast path")
struct MaxPoolPathTests {
    @Test("planes without NaN take the fast path; a NaN still propagates into every window holding it")
    func nanPlanes() throws {
        let directory = try LoaderTests.make(
            """
            node = helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
            g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 5, 5])],
                                  [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
            onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 12)]), d + '/model.onnx')
            """)
        defer { TestSupport.remove(directory) }
        var values = (0..<50).map { Float(($0 * 37) % 23) - 11 }
        values[25 + 12] = .nan  // the centre of the second plane
        let y = try #require(try ONNXModel(path: directory + "/model.onnx").run(["x": Tensor(values, shape: [1, 2, 5, 5])])["y"])
        #expect(y.shape == [1, 2, 3, 3])
        let out = y.scalars(as: Float.self)
        // First plane: plain maxima of each clipped 3×3 window.
        for oh in 0..<3 {
            for ow in 0..<3 {
                var expected = -Float.infinity
                for h in max(0, oh * 2 - 1)..<min(5, oh * 2 + 2) {
                    for w in max(0, ow * 2 - 1)..<min(5, ow * 2 + 2) { expected = max(expected, values[h * 5 + w]) }
                }
                #expect(out[oh * 3 + ow] == expected)
            }
        }
        // Second plane: windows over the centre (all but the corners' neighbours) are NaN.
        let nanWindows = (0..<9).filter { out[9 + $0].isNaN }
        #expect(
            nanWindows
                == [0, 1, 2, 3, 4, 5, 6, 7, 8].filter { k in
                    let (oh, ow) = (k / 3, k % 3)
                    return (oh * 2 - 1...oh * 2 + 1).contains(2) && (ow * 2 - 1...ow * 2 + 1).contains(2)
                })
    }

    @Test("AveragePool planes give a plain loop's bits (rows' window sums, then down the rows): strides, kernels, pads, count_include_pad, ceil_mode")
    func averagePlanes() throws {
        // (kernel, strides, pads (top, left, bottom, right), count_include_pad, ceil_mode), over 13×45 and 6×7 images.
        let cases: [([Int], [Int], [Int], Int, Int)] = [
            ([2, 2], [2, 2], [0, 0, 0, 0], 0, 0), ([3, 3], [1, 1], [1, 1, 1, 1], 0, 0), ([3, 3], [1, 1], [1, 1, 1, 1], 1, 0),
            ([3, 4], [2, 2], [1, 2, 1, 2], 1, 1), ([2, 3], [3, 3], [0, 1, 1, 0], 0, 1), ([5, 5], [2, 1], [2, 2, 2, 2], 0, 0)
        ]
        let lines = cases.enumerated().map { i, c in
            "save(\(i), \(c.0), \(c.1), \(c.2), \(c.3), \(c.4))"
        }.joined(separator: "\n")
        let directory = try LoaderTests.make(
            """
            def save(i, kernel, strides, pads, include, ceil):
                node = helper.make_node('AveragePool', ['x'], ['y'], kernel_shape=kernel, strides=strides, pads=pads,
                                        count_include_pad=include, ceil_mode=ceil)
                g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 3, 'h', 'w'])],
                                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 19)]), d + f'/pool{i}.onnx')
            \(lines)
            """)
        defer { TestSupport.remove(directory) }
        for (index, c) in cases.enumerated() {
            let model = try ONNXModel(path: directory + "/pool\(index).onnx")
            for (height, width) in [(13, 45), (6, 7)] {
                let values = (0..<(3 * height * width)).map { Float(($0 * 7_919) % 1_009) / 97 - 5 }
                let y = try #require(try model.run(["x": Tensor(values, shape: [1, 3, height, width])])["y"])
                let (outHeight, outWidth) = (y.shape[2], y.shape[3])
                let out = y.scalars(as: Float.self)
                var mismatches = 0
                for plane in 0..<3 {
                    for oh in 0..<outHeight {
                        let top = oh * c.1[0] - c.2[0]
                        let (lo, hi) = (max(top, 0), min(top + c.0[0], height))
                        let rowCount = c.3 == 1 ? min(top + c.0[0], height + c.2[2]) - top : hi - lo
                        for ow in 0..<outWidth {
                            let left = ow * c.1[1] - c.2[1]
                            let (first, end) = (max(left, 0), min(left + c.0[1], width))
                            let columnCount = c.3 == 1 ? min(left + c.0[1], width + c.2[3]) - left : end - first
                            var total: Float = 0
                            for h in lo..<hi {
                                var row: Float = 0
                                for w in first..<end { row = row + values[(plane * height + h) * width + w] }
                                total = total + row
                            }
                            let expected = total / Float(max(rowCount * columnCount, 1))
                            if out[(plane * outHeight + oh) * outWidth + ow].bitPattern != expected.bitPattern { mismatches += 1 }
                        }
                    }
                }
                #expect(mismatches == 0, "case \(index), \(height)×\(width)")
            }
        }
    }

    @Test("an AveragePool window over the whole unpadded plane is the plane's mean (GlobalAveragePool's sums), with a padded one left to the planes' path")
    func wholePlaneAverage() throws {
        let directory = try LoaderTests.make(
            """
            for name, pads in [('whole', [0, 0, 0, 0]), ('padded', [1, 1, 1, 1])]:
                node = helper.make_node('AveragePool', ['x'], ['y'], kernel_shape=[7, 7], pads=pads)
                g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 5, 7, 7])],
                                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 19)]), d + f'/{name}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        let values: [Float] = (0..<245).map { (i: Int) -> Float in Float((i * 7_919) % 1_009) / 97 - 5 }
        let whole = try #require(try ONNXModel(path: directory + "/whole.onnx").run(["x": Tensor(values, shape: [1, 5, 7, 7])])["y"])
        #expect(whole.shape == [1, 5, 1, 1])
        var means: [Float] = []
        for plane in 0..<5 {
            var sum = 0.0
            for k in 0..<49 { sum += Double(values[plane * 49 + k]) }
            means.append(Float(sum / 49))
        }
        #expect(whole.scalars(as: Float.self) == means)
        // Padded, the windows are clipped (3×3 outputs, each the mean of the values it covers).
        let padded = try #require(try ONNXModel(path: directory + "/padded.onnx").run(["x": Tensor(values, shape: [1, 5, 7, 7])])["y"])
        #expect(padded.shape == [1, 5, 3, 3])
        var corner: Float = 0
        for h in 0..<6 {
            for w in 0..<6 { corner += values[h * 7 + w] }
        }
        let expected = corner / 36
        #expect(abs(padded.scalars(as: Float.self)[0] - expected) <= 1e-5 * max(1, abs(expected)))
    }

    @Test("in a wide plane, a NaN reaches every window holding it and one in a row no window reads changes nothing")
    func nanWidePlanes() throws {
        let directory = try LoaderTests.make(
            """
            for name, kernel in [('wide', [3, 3]), ('skipping', [1, 1])]:
                node = helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=kernel, strides=[2, 2])
                g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1, 9, 40])],
                                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 12)]), d + f'/{name}.onnx')
            """)
        defer { TestSupport.remove(directory) }
        var values = (0..<360).map { Float(($0 * 37) % 23) - 11 }
        values[4 * 40 + 20] = .nan  // row 4, column 20: in the vector part of the row
        values[1 * 40 + 3] = .nan  // row 1: read by the 3×3 windows of output row 0, by no 1×1 window
        let wide = try #require(try ONNXModel(path: directory + "/wide.onnx").run(["x": Tensor(values, shape: [1, 1, 9, 40])])["y"])
        #expect(wide.shape == [1, 1, 4, 19])
        let out = wide.scalars(as: Float.self)
        for oh in 0..<4 {
            for ow in 0..<19 {
                let rows = (oh * 2)..<(oh * 2 + 3), columns = (ow * 2)..<(ow * 2 + 3)
                let holdsNaN = (rows.contains(4) && columns.contains(20)) || (rows.contains(1) && columns.contains(3))
                if holdsNaN {
                    #expect(out[oh * 19 + ow].isNaN, "window (\(oh), \(ow))")
                } else {
                    let expected = rows.flatMap { h in columns.map { w in values[h * 40 + w] } }.max()!
                    #expect(out[oh * 19 + ow] == expected, "window (\(oh), \(ow))")
                }
            }
        }
        let skipping = try #require(try ONNXModel(path: directory + "/skipping.onnx").run(["x": Tensor(values, shape: [1, 1, 9, 40])])["y"])
        let picked = skipping.scalars(as: Float.self)
        #expect(picked.count == 5 * 20)
        for oh in 0..<5 {
            for ow in 0..<20 {
                let value = values[oh * 2 * 40 + ow * 2]
                #expect(picked[oh * 20 + ow] == value || (picked[oh * 20 + ow].isNaN && value.isNaN), "(\(oh), \(ow))")
            }
        }
    }

    @Test("sixteen-wide window maxima match a plain loop for strides 1–3, kernels 1–5, pads and ceil mode")
    func geometries() throws {
        // (kernel, stride, pads begin/end, ceil_mode) per model; widths run from planes narrower
        // than sixteen (the padded copy's way) to several vector steps with tails.
        let configurations: [(kernel: [Int], strides: [Int], pads: [Int], ceil: Int)] = [
            ([3, 3], [2, 2], [0, 0, 0, 0], 0), ([3, 3], [2, 2], [1, 1, 1, 1], 0), ([3, 3], [2, 2], [0, 0, 0, 0], 1),
            ([2, 2], [2, 2], [0, 0, 0, 0], 0), ([3, 3], [1, 1], [1, 1, 1, 1], 0), ([5, 4], [1, 2], [2, 1, 2, 2], 0),
            ([1, 1], [2, 2], [0, 0, 0, 0], 0), ([4, 5], [3, 2], [1, 2, 0, 1], 1), ([3, 2], [2, 3], [0, 1, 1, 0], 0),
            ([2, 5], [1, 1], [0, 0, 0, 0], 0)
        ]
        let lines = configurations.enumerated().map { index, c in
            "save(\(index), \(c.kernel), \(c.strides), \(c.pads), \(c.ceil))"
        }.joined(separator: "\n")
        let directory = try LoaderTests.make(
            """
            def save(i, kernel, strides, pads, ceil):
                node = helper.make_node('MaxPool', ['x'], ['y'], kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=ceil)
                g = helper.make_graph([node], 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 'h', 'w'])],
                                      [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
                onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid('', 12)]), d + f'/pool{i}.onnx')
            \(lines)
            """)
        defer { TestSupport.remove(directory) }
        var generator = SplitMix64(seed: 5)
        for (index, c) in configurations.enumerated() {
            let model = try ONNXModel(path: directory + "/pool\(index).onnx")
            for (height, width) in [(7, 7), (4, 5), (7, 9), (14, 14), (20, 15), (5, 19), (8, 27), (12, 33), (9, 40), (6, 71), (11, 110)] {
                let values = (0..<(2 * height * width)).map { _ in Float(Int(generator.next() % 2001) - 1000) / 37 }
                let y = try #require(try model.run(["x": Tensor(values, shape: [1, 2, height, width])])["y"])
                let (outHeight, outWidth) = (y.shape[2], y.shape[3])
                let out = y.scalars(as: Float.self)
                var mismatches = 0
                for plane in 0..<2 {
                    for oh in 0..<outHeight {
                        for ow in 0..<outWidth {
                            var expected = -Float.infinity
                            let (top, left) = (oh * c.strides[0] - c.pads[0], ow * c.strides[1] - c.pads[1])
                            for h in max(0, top)..<min(height, top + c.kernel[0]) {
                                for w in max(0, left)..<min(width, left + c.kernel[1]) {
                                    expected = max(expected, values[(plane * height + h) * width + w])
                                }
                            }
                            if out[(plane * outHeight + oh) * outWidth + ow] != expected { mismatches += 1 }
                        }
                    }
                }
                #expect(mismatches == 0, "configuration \(index) \(c), input \(height)×\(width)")
            }
        }
    }
}
