import Foundation
import Testing
@testable import VesselServer

@Suite("request JSON parser")
struct FastJSONTests {
    func parse(_ text: String) throws -> JSONValue { try FastJSON.parse(ArraySlice(Array(text.utf8))) }

    @Test("objects, strings with escapes, nested and mixed arrays, literals")
    func values() throws {
        let value = try parse(#" {"a": [1, 2.5e3, -0.5, 0], "b": "x\"y\u00e9\n", "c": [[1, 2], [3, 4]], "d": [1, "s", null, true, false], "e": {}} "#)
        guard case .numbers(let a)? = value["a"] else { Issue.record("a is not a number array"); return }
        #expect(a == [1, 2500, -0.5, 0])
        #expect(value["b"]?.string == "x\"yé\n")
        guard case .array(let c)? = value["c"], case .numbers(let row)? = c.last else { Issue.record("c"); return }
        #expect(row == [3, 4])
        guard case .array(let d)? = value["d"] else { Issue.record("d"); return }
        #expect(d.count == 5 && d[1].string == "s" && d[3].bool == true && d[4].bool == false)
        if case .null = d[2] {} else { Issue.record("d[2] is not null") }
        if case .object(let e)? = value["e"] { #expect(e.isEmpty) } else { Issue.record("e") }
    }

    @Test("numbers round-trip exactly (Foundation's JSONSerialization on Linux drops digits of some)")
    func numbers() throws {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<2000).map { _ in Double.random(in: -1e6...1e6, using: &generator) * pow(10, Double(Int.random(in: -30...30, using: &generator))) }
        let text = "[" + values.map { "\($0)" }.joined(separator: ",") + "]"
        guard case .numbers(let parsed) = try parse(text) else { Issue.record("not a number array"); return }
        #expect(parsed == values)
        #expect(parsed == values.map { strtod("\($0)", nil) })
    }

    @Test("invalid JSON is refused with where", arguments: [
        "01", "1.", "-", "1e", "[1,]", "[1 2]", #"{"a":1,}"#, #"{"a" 1}"#, #"{a:1}"#, "\"abc", "\"a\u{01}b\"", "[1] x", "tru", "nul", "+1", "",
        String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
    ])
    func invalid(_ text: String) {
        #expect(throws: FastJSON.Failure.self) { try parse(text) }
    }
}
