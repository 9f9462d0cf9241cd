import Testing
@testable import VesselServer
import VesselTensor

@Suite("binary tensor data")
struct BinaryTensorTests {
    @Test("BOOL bytes other than 0 and 1 read as true; BYTES elements are length-prefixed")
    func boolsAndBytes() throws {
        let header = Array(
            #"{"inputs":[{"name":"b","shape":[4],"datatype":"BOOL","parameters":{"binary_data_size":4}},{"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":13}}]}"#
                .utf8)
        let strings: [UInt8] = [2, 0, 0, 0] + Array("hi".utf8) + [3, 0, 0, 0] + Array("abc".utf8)
        let request = try OIPCodec.decodeRequest(header + [0, 1, 7, 255] + strings, headerLength: header.count)
        #expect(request.inputs["b"]?.scalars(as: Bool.self) == [false, true, true, true])
        #expect(request.inputs["s"]?.strings == ["hi", "abc"])
        #expect(throws: RequestError.self) { try OIPCodec.decodeRequest(header + [0, 1, 7] + strings, headerLength: header.count) }
    }
}

@Suite("text helpers without Foundation")
struct TextHelperTests {
    @Test("trimmingWhitespace drops leading and trailing white space only (a --token-file's newline, a header's spaces)")
    func trimming() {
        #expect("  s3cr3t token\n".trimmingWhitespace == "s3cr3t token")
        #expect("\t\r\n \u{00A0}".trimmingWhitespace == "")
        #expect("plain".trimmingWhitespace == "plain")
        #expect("key: value  "[...].dropFirst(4).trimmingWhitespace == "value")
    }

    @Test("fixed-point text as String(format: \"%.3f\") writes it")
    func fixedPoint() {
        #expect(fixed(0) == "0.000")
        #expect(fixed(1.2345) == "1.235" || fixed(1.2345) == "1.234")
        #expect(fixed(12.5, digits: 1) == "12.5")
        #expect(fixed(-0.0004) == "0.000")
        #expect(fixed(-2.5) == "-2.500")
        #expect(fixed(7, digits: 0) == "7")
    }
}
