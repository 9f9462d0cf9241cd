import Foundation
import Testing
import VesselJSON
import VesselTensor

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

    @Test("the short-number fast path gives strtod's double, digit for digit, and hands it the rest")
    func shortNumbers() throws {
        var generator = SystemRandomNumberGenerator()
        var texts = [
            "0", "-0", "0.0", "1e22", "1e23", "9007199254740992", "9007199254740993", "-9007199254740993.5",
            "0.1", "0.30000001192092896", "123456789012345678901234567890", "1.7976931348623157e308", "4.9e-324",
            "1e-400", "1e400", "0.000000000000000000000000001", "12345678901234567890e-30", "1E+2", "2.5e-0"
        ]
        for _ in 0..<3000 {
            // Float32 values printed as Python does (up to 17 significant digits), short decimals,
            // integers, and values with exponents.
            let digits = Int.random(in: 1...20, using: &generator)
            let integer = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            let point = Int.random(in: 0...digits, using: &generator)
            var text = point == digits ? integer : String(integer.prefix(point).isEmpty ? "0" : integer.prefix(point)) + "." + integer.dropFirst(point)
            if text.first == "0", text.count > 1, !text.hasPrefix("0.") { text = "1" + text }
            if Bool.random(using: &generator) { text += "e" + String(Int.random(in: -40...40, using: &generator)) }
            texts.append(Bool.random(using: &generator) ? "-" + text : text)
            texts.append("\(Double(Float.random(in: -1...1, using: &generator)))")
            // 16 to 19 digits with exponents up to ±19: the integer-arithmetic path, ties included.
            let long = String(
                (0..<Int.random(in: 16...19, using: &generator)).map { index in
                    Character(String(Int.random(in: index == 0 ? 1...9 : 0...9, using: &generator)))
                })
            texts.append(long + "e" + String(Int.random(in: -19...19, using: &generator)))
        }
        // Exact halfway cases between doubles: 2^53 + 1 (ties to even, down) and 2^53 + 3 (up).
        texts += ["9007199254740993", "9007199254740995", "18014398509481986", "18014398509481990e-1", "9007199254740993e1"]
        guard case .numbers(let parsed) = try parse("[" + texts.joined(separator: ",") + "]") else { Issue.record("not a number array"); return }
        for (text, value) in zip(texts, parsed) {
            let expected = strtod(text, nil)
            #expect(value.bitPattern == expected.bitPattern, "\(text): \(value) against strtod's \(expected)")
        }
    }

    @Test(
        "invalid JSON is refused with where",
        arguments: [
            "01", "1.", "-", "1e", "[1,]", "[1 2]", #"{"a":1,}"#, #"{"a" 1}"#, #"{a:1}"#, "\"abc", "\"a\u{01}b\"", "[1] x", "tru", "nul", "+1", "",
            String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        ])
    func invalid(_ text: String) {
        #expect(throws: FastJSON.Failure.self) { try parse(text) }
    }
}
