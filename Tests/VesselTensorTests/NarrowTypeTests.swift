import Testing
import VesselTensor

/// The float8/float4 encodings against their definitions; the ONNX node suite's Cast,
/// CastLike, QuantizeLinear and DequantizeLinear cases check them against onnx's reference.
@Suite("ONNX narrow types")
struct NarrowTypeTests {
    static let formats: [(String, MiniFloat, Float)] = [
        ("E4M3FN", .e4m3fn, 448), ("E4M3FNUZ", .e4m3fnuz, 240), ("E5M2", .e5m2, 57344), ("E5M2FNUZ", .e5m2fnuz, 57344), ("E2M1", .e2m1, 6)
    ]

    @Test("every bit pattern decodes to a value that encodes back to it; the largest finite value is the spec's", arguments: 0..<5)
    func roundTrip(_ index: Int) {
        let (name, format, largest) = Self.formats[index]
        let patterns = format.exponentBits + format.mantissaBits == 3 ? 0..<16 : 0..<256
        var finiteMax: Float = 0
        for bits in patterns {
            let pattern = UInt8(bits)
            let value = format.decode(pattern)
            if value.isNaN {
                #expect(format.decode(format.encode(value)).isNaN, "\(name) \(bits)")
                continue
            }
            if value.isInfinite {
                #expect(format.encode(value, saturate: false) == pattern, "\(name) \(bits)")
                continue
            }
            if value.isFinite { finiteMax = max(finiteMax, value) }
            // -0 of the FNUZ types does not exist: 0x80 is their NaN, handled above.
            #expect(format.encode(value) == pattern, "\(name): \(bits) decodes to \(value), which encodes to \(format.encode(value))")
        }
        #expect(finiteMax == largest, "\(name)")
        // Saturation: beyond the largest value, and infinity, give the largest value; without
        // it infinity (E5M2) or NaN.
        #expect(format.decode(format.encode(largest * 4)) == largest)
        #expect(format.decode(format.encode(-.infinity)) == -largest)
        let unsaturated = format.decode(format.encode(.infinity, saturate: false))
        switch format.specials {
        case .ieee: #expect(unsaturated == .infinity)
        case .none: #expect(unsaturated == largest)
        default: #expect(unsaturated.isNaN)
        }
    }

    @Test("rounding is to nearest, ties to even, including below the normal range")
    func rounding() {
        // E4M3FN around 1: the step is 1/8; 1 + 1/16 is a tie and goes to the even 1.0.
        #expect(MiniFloat.e4m3fn.decode(MiniFloat.e4m3fn.encode(1.0625)) == 1)
        #expect(MiniFloat.e4m3fn.decode(MiniFloat.e4m3fn.encode(1.1875)) == 1.25)
        // Its smallest subnormal is 2^-9; half of it is a tie with 0 (even), a little more rounds up.
        #expect(MiniFloat.e4m3fn.decode(MiniFloat.e4m3fn.encode(0x1p-10)) == 0)
        #expect(MiniFloat.e4m3fn.decode(MiniFloat.e4m3fn.encode(0x1.1p-10)) == 0x1p-9)
        // FNUZ has no negative zero: -0 and tiny negatives encode as +0.
        #expect(MiniFloat.e4m3fnuz.encode(-0.0) == 0 && MiniFloat.e5m2fnuz.encode(-1e-30) == 0)
        #expect(Float8E8M0(1.1).floatValue == 2 && Float8E8M0(1.1, rounding: .down).floatValue == 1)
        #expect(Float8E8M0(3, rounding: .nearest).floatValue == 4 && Float8E8M0(2.9, rounding: .nearest).floatValue == 2)
    }

    @Test("4- and 2-bit integers pack two or four to a byte, first in the low bits, and wrap like the reference")
    func packing() {
        let values: [Int8] = [-8, 7, -1, 0, 3]
        let tensor = Tensor(values.map { Int4(value: $0) }, shape: [5])
        #expect(tensor.packedBytes() == [0x78, 0x0F, 0x03])
        let back = tensor.packedBytes().withUnsafeBytes { Tensor.unpacking(.int4, shape: [5], bytes: $0) }
        #expect(back.scalars(as: Int4.self).map(\.value) == values)
        let twoBit = [UInt8(0b11_10_01_00)].withUnsafeBytes { Tensor.unpacking(.int2, shape: [4], bytes: $0) }
        #expect(twoBit.scalars(as: Int2.self).map(\.value) == [0, 1, -2, -1])
        #expect(Int4(fromDouble: 8).value == -8 && Int4(fromDouble: -9.7).value == 7 && UInt2(fromDouble: -1).value == 3)
    }
}
