/// Finds where the main graph's large `raw_data` payloads lie in a model file, reading only the
/// protobuf wire format, so its initializers can be read-only views over the mapped file.
///
/// Decoding the whole file with swift-protobuf copies every payload into a `Data`, and the tensor
/// then copied it again: for a 100 MB model that was most of the 110 ms its loading took. Here
/// swift-protobuf decodes the file with those payloads left out (``stripped``), and the builder
/// takes each initializer's bytes from ``payloads``.
///
/// Only `ModelProto.graph` (field 7) → `GraphProto.initializer` (5) → `TensorProto.raw_data` (9)
/// is looked into; every other field is copied as it is. A file this scan does not understand
/// (groups, truncation, lengths past the end) gives nil, and the caller decodes it whole, so
/// swift-protobuf is still what reports a malformed model.
struct RawDataScan {
    /// The model without the payloads below: a valid `ModelProto` encoding.
    let stripped: [UInt8]
    /// The main graph's initializer ordinal (across every `graph` field, in order, as decoding
    /// merges them) → the byte range of its `raw_data` in the file.
    let payloads: [Int: Range<Int>]

    /// Smaller payloads stay in the decoded message: a view saves nothing there.
    static let minimumPayload = 4096

    private enum Number {
        static let graph: UInt64 = 7
        static let initializer: UInt64 = 5
        static let rawData: UInt64 = 9
    }

    private struct Field {
        let number: UInt64
        /// The whole field, tag included.
        let bytes: Range<Int>
        /// A length-delimited field's content; nil for the other wire types.
        let content: Range<Int>?
    }

    /// nil when nothing is worth taking out, or the bytes are not a protobuf encoding this scan
    /// reads.
    init?(_ file: UnsafeRawBufferPointer) {
        var output: [UInt8] = []
        var payloads: [Int: Range<Int>] = [:]
        var ordinal = 0
        guard let fields = Self.fields(file, 0..<file.count) else { return nil }
        output.reserveCapacity(4096)
        for field in fields {
            guard field.number == Number.graph, let graph = field.content else {
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: file[field.bytes]))
                continue
            }
            guard let graphFields = Self.fields(file, graph) else { return nil }
            var strippedGraph: [UInt8] = []
            for graphField in graphFields {
                guard graphField.number == Number.initializer, let tensor = graphField.content else {
                    strippedGraph.append(contentsOf: UnsafeRawBufferPointer(rebasing: file[graphField.bytes]))
                    continue
                }
                guard let tensorFields = Self.fields(file, tensor) else { return nil }
                // A repeated non-repeated field: the last one wins when decoded, so the last is
                // the payload and every one is left out.
                let rawData = tensorFields.last { $0.number == Number.rawData && $0.content != nil }?.content
                if let rawData, rawData.count >= Self.minimumPayload {
                    var strippedTensor: [UInt8] = []
                    for tensorField in tensorFields where !(tensorField.number == Number.rawData && tensorField.content != nil) {
                        strippedTensor.append(contentsOf: UnsafeRawBufferPointer(rebasing: file[tensorField.bytes]))
                    }
                    Self.appendField(Number.initializer, strippedTensor, to: &strippedGraph)
                    payloads[ordinal] = rawData
                } else {
                    strippedGraph.append(contentsOf: UnsafeRawBufferPointer(rebasing: file[graphField.bytes]))
                }
                ordinal += 1
            }
            Self.appendField(Number.graph, strippedGraph, to: &output)
        }
        guard !payloads.isEmpty else { return nil }
        stripped = output
        self.payloads = payloads
    }

    private static func appendField(_ number: UInt64, _ content: [UInt8], to output: inout [UInt8]) {
        appendVarint(number << 3 | 2, to: &output)
        appendVarint(UInt64(content.count), to: &output)
        output.append(contentsOf: content)
    }

    private static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }

    /// The fields of the message encoded in `range`, or nil if they do not end exactly there.
    private static func fields(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> [Field]? {
        var fields: [Field] = []
        var index = range.lowerBound
        let end = range.upperBound
        while index < end {
            let start = index
            guard let tag = varint(bytes, &index, end), tag >> 3 != 0 else { return nil }
            var content: Range<Int>?
            switch tag & 7 {
            case 0: guard varint(bytes, &index, end) != nil else { return nil }
            case 1: index += 8
            case 5: index += 4
            case 2:
                guard let length = varint(bytes, &index, end), length <= UInt64(end - index) else { return nil }
                content = index..<index + Int(length)
                index += Int(length)
            default: return nil  // groups (3, 4) and invalid wire types
            }
            guard index <= end else { return nil }
            fields.append(Field(number: tag >> 3, bytes: start..<index, content: content))
        }
        return fields
    }

    private static func varint(_ bytes: UnsafeRawBufferPointer, _ index: inout Int, _ end: Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while index < end, shift < 64 {
            let byte = bytes[index]
            index += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
}
