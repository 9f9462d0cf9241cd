/// The element types a Vessel tensor can hold.
///
/// The raw value is the canonical spelling used in `vessel.yaml` and in `vessel inspect`; the
/// Open Inference Protocol v2 and ONNX spell the same types differently, so both spellings are
/// provided here once and every other module converts through this type.
public enum DType: String, CaseIterable, Sendable, Hashable, Codable {
    case float32, float64, float16, bfloat16
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case bool, string
    /// ONNX's narrow types (`NarrowTypes.swift`): models may compute with them inside, but the
    /// Open Inference Protocol has no datatype for them, so they never cross the wire
    /// (`travels`).
    case float8e4m3fn, float8e4m3fnuz, float8e5m2, float8e5m2fnuz, float8e8m0, float4e2m1
    case int4, uint4, int2, uint2

    /// Bytes per element, or `nil` for variable-length strings.
    public var byteSize: Int? {
        switch self {
        case .bool, .int8, .uint8: 1
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float4e2m1: 1
        case .int4, .uint4, .int2, .uint2: 1
        case .float16, .bfloat16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        case .string: nil
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float16, .bfloat16, .float32, .float64: true
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float4e2m1: true
        default: false
        }
    }

    /// How many elements ONNX packs into a byte: 2 for the 4-bit types, 4 for the 2-bit ones,
    /// 1 for the rest (which take `byteSize` bytes each).
    public var elementsPerByte: Int {
        switch self {
        case .int4, .uint4, .float4e2m1: 2
        case .int2, .uint2: 4
        default: 1
        }
    }

    /// Whether tensors of this type can be sent and received over the Open Inference Protocol
    /// and declared in `vessel.yaml`: every type but ONNX's narrow ones.
    public var travels: Bool {
        switch self {
        case .float8e4m3fn, .float8e4m3fnuz, .float8e5m2, .float8e5m2fnuz, .float8e8m0, .float4e2m1: false
        case .int4, .uint4, .int2, .uint2: false
        default: true
        }
    }

    /// The Open Inference Protocol v2 datatype name (`FP32`, `INT64`, `BYTES`, …).
    ///
    /// See https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md#tensor-data-types
    public var oipName: String {
        switch self {
        case .float32: "FP32"
        case .float64: "FP64"
        case .float16: "FP16"
        case .bfloat16: "BF16"
        case .int8: "INT8"
        case .int16: "INT16"
        case .int32: "INT32"
        case .int64: "INT64"
        case .uint8: "UINT8"
        case .uint16: "UINT16"
        case .uint32: "UINT32"
        case .uint64: "UINT64"
        case .bool: "BOOL"
        case .string: "BYTES"
        // Not OIP datatypes (`travels` is false): ONNX's names, for messages.
        case .float8e4m3fn: "FLOAT8E4M3FN"
        case .float8e4m3fnuz: "FLOAT8E4M3FNUZ"
        case .float8e5m2: "FLOAT8E5M2"
        case .float8e5m2fnuz: "FLOAT8E5M2FNUZ"
        case .float8e8m0: "FLOAT8E8M0"
        case .float4e2m1: "FLOAT4E2M1"
        case .int4: "INT4"
        case .uint4: "UINT4"
        case .int2: "INT2"
        case .uint2: "UINT2"
        }
    }

    /// Parses the canonical name, the OIP name, or a common alias (`float`, `double`, `fp32`,
    /// `long`, `str`, `bytes`), ignoring case.
    public init?(parsing text: String) {
        let lowered = text.lowercased()
        if let exact = DType(rawValue: lowered), exact.travels {
            self = exact
            return
        }
        if let oip = DType.allCases.first(where: { $0.travels && $0.oipName.lowercased() == lowered }) {
            self = oip
            return
        }
        switch lowered {
        case "float", "f32": self = .float32
        case "double", "f64": self = .float64
        case "half", "f16": self = .float16
        case "bf16": self = .bfloat16
        case "long", "i64": self = .int64
        case "int", "i32": self = .int32
        case "byte", "u8": self = .uint8
        case "boolean": self = .bool
        case "str", "text", "bytes": self = .string
        default: return nil
        }
    }
}
