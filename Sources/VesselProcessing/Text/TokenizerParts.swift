@_spi(_Unicode) import Swift
import VesselJSON

// The parts a Hugging Face `tokenizer.json` names — normalizer, pre-tokenizer, model,
// post-processor — each read from its JSON object and run on Unicode scalars, as the
// `tokenizers` library runs them on Rust `char`s. A part this build does not run is refused when
// the file loads, never skipped.

typealias Scalars = [Unicode.Scalar]

struct TokenizerFileError: Error, CustomStringConvertible {
    var description: String
}

extension JSONValue {
    var int: Int? { number.flatMap { $0 == $0.rounded() && Swift.abs($0) < 1e15 ? Int($0) : nil } }
    /// An object's members (the tokenizer file is parsed with exact keys).
    var members: [(key: String, value: JSONValue)]? {
        switch self {
        case .members(let members): members
        case .object(let fields): fields.map { ($0.key, $0.value) }
        default: nil
        }
    }
    var isNull: Bool { if case .null = self { true } else { false } }
}

private func fail(_ message: String) -> TokenizerFileError { TokenizerFileError(description: message) }

/// A `pattern` as the library writes it: `{"String": "…"}` works; `{"Regex": "…"}` (Oniguruma
/// syntax) is refused.
private func literalPattern(_ value: JSONValue?, in part: String) throws(TokenizerFileError) -> Scalars {
    if let text = value?["String"]?.string { return Array(text.unicodeScalars) }
    if value?["Regex"] != nil { throw fail("\(part) with a regular expression pattern is not supported; only literal `String` patterns are") }
    throw fail("\(part) needs a `pattern`")
}

// MARK: Normalizers

indirect enum Normalizer: Sendable {
    case bert(cleanText: Bool, chinese: Bool, stripAccents: Bool, lowercase: Bool)
    case lowercase
    case nfd
    case nfc
    case stripAccents
    case strip(left: Bool, right: Bool)
    case replace(pattern: Scalars, content: Scalars)
    case prepend(Scalars)
    case sequence([Normalizer])

    init(_ json: JSONValue) throws(TokenizerFileError) {
        let type = json["type"]?.string ?? ""
        switch type {
        case "BertNormalizer":
            let lowercase = json["lowercase"]?.bool ?? true
            let strip = json["strip_accents"].flatMap { $0.isNull ? nil : $0.bool } ?? lowercase
            self = .bert(
                cleanText: json["clean_text"]?.bool ?? true, chinese: json["handle_chinese_chars"]?.bool ?? true,
                stripAccents: strip, lowercase: lowercase)
        case "Lowercase": self = .lowercase
        case "NFD": self = .nfd
        case "NFC": self = .nfc
        case "StripAccents": self = .stripAccents
        case "Strip": self = .strip(left: json["strip_left"]?.bool ?? true, right: json["strip_right"]?.bool ?? true)
        case "Replace":
            self = .replace(
                pattern: try literalPattern(json["pattern"], in: "the Replace normalizer"),
                content: Array((json["content"]?.string ?? "").unicodeScalars))
        case "Prepend": self = .prepend(Array((json["prepend"]?.string ?? "").unicodeScalars))
        case "Sequence":
            var parts: [Normalizer] = []
            for item in json["normalizers"]?.elements ?? [] { parts.append(try Normalizer(item)) }
            self = .sequence(parts)
        case "NFKC", "NFKD", "Precompiled", "ByteLevel":
            throw fail("the \(type) normalizer is not supported yet (NFD, NFC, Lowercase, StripAccents, Strip, Replace, Prepend and BertNormalizer are)")
        default:
            throw fail("unknown normalizer `\(type)`")
        }
    }

    func apply(_ text: Scalars) -> Scalars {
        switch self {
        case .bert(let cleanText, let chinese, let stripAccents, let lowercase):
            var out = Scalars()
            out.reserveCapacity(text.count + 8)
            for c in text {
                if cleanText {
                    if c.value == 0 || c.value == 0xFFFD || TextClass.isControl(c) { continue }
                    if TextClass.isWhitespace(c) { out.append(" "); continue }
                }
                if chinese, TextClass.isChineseCharacter(c) {
                    out.append(" ")
                    out.append(c)
                    out.append(" ")
                } else {
                    out.append(c)
                }
            }
            if stripAccents { out = Self.decomposed(out).filter { !TextClass.isNonspacingMark($0) } }
            if lowercase {
                var lowered = Scalars()
                lowered.reserveCapacity(out.count)
                for c in out { TextClass.appendLowercase(c, to: &lowered) }
                out = lowered
            }
            return out
        case .lowercase:
            var out = Scalars()
            out.reserveCapacity(text.count)
            for c in text { TextClass.appendLowercase(c, to: &out) }
            return out
        case .nfd: return Self.decomposed(text)
        case .nfc:
            if text.allSatisfy({ $0.value < 0x300 }) { return text }
            return Array(makeString("", text[...])._nfc)
        case .stripAccents: return text.filter { !TextClass.isMark($0) }
        case .strip(let left, let right):
            var slice = text[...]
            if left { while let first = slice.first, TextClass.isWhitespace(first) { slice = slice.dropFirst() } }
            if right { while let last = slice.last, TextClass.isWhitespace(last) { slice = slice.dropLast() } }
            return Array(slice)
        case .replace(let pattern, let content):
            guard !pattern.isEmpty else { return text }
            var out = Scalars()
            var i = 0
            while i < text.count {
                if text[i] == pattern[0], i + pattern.count <= text.count, Array(text[i..<i + pattern.count]) == pattern {
                    out.append(contentsOf: content)
                    i += pattern.count
                } else {
                    out.append(text[i])
                    i += 1
                }
            }
            return out
        case .prepend(let prefix):
            return text.isEmpty ? text : prefix + text
        case .sequence(let parts):
            return parts.reduce(text) { $1.apply($0) }
        }
    }

    static func decomposed(_ text: Scalars) -> Scalars {
        if text.allSatisfy({ $0.value < 0xC0 }) { return text }
        return Array(makeString("", text[...])._nfd)
    }
}

// MARK: Pre-tokenizers

/// How a split keeps the delimiters it found (the library's `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious",
        mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// `piece` cut where `isDelimiter` holds, the delimiters kept as `behavior` says.
func splitPiece(_ piece: ArraySlice<Unicode.Scalar>, behavior: SplitBehavior, where isDelimiter: (Unicode.Scalar) -> Bool) -> [ArraySlice<Unicode.Scalar>] {
    var out: [ArraySlice<Unicode.Scalar>] = []
    var start = piece.startIndex
    var i = piece.startIndex
    func push(_ range: Range<Int>) { if !range.isEmpty { out.append(piece[range]) } }
    while i < piece.endIndex {
        guard isDelimiter(piece[i]) else { i += 1; continue }
        switch behavior {
        case .removed:
            push(start..<i)
            start = i + 1
            i += 1
        case .isolated:
            push(start..<i)
            push(i..<i + 1)
            start = i + 1
            i += 1
        case .mergedWithPrevious:
            push(start..<i + 1)
            start = i + 1
            i += 1
        case .mergedWithNext:
            push(start..<i)
            start = i
            i += 1
        case .contiguous:
            var end = i
            while end < piece.endIndex, isDelimiter(piece[end]) { end += 1 }
            push(start..<i)
            push(i..<end)
            start = end
            i = end
        }
    }
    push(start..<piece.endIndex)
    return out
}

indirect enum PreTokenizer: Sendable {
    case bert
    case whitespace
    case whitespaceSplit
    case punctuation(SplitBehavior)
    case digits(individual: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case metaspace(replacement: Unicode.Scalar, prepend: String, split: Bool)
    case split(pattern: Scalars, behavior: SplitBehavior, invert: Bool)
    case sequence([PreTokenizer])

    init(_ json: JSONValue) throws(TokenizerFileError) {
        let type = json["type"]?.string ?? ""
        func behavior(_ fallback: SplitBehavior) throws(TokenizerFileError) -> SplitBehavior {
            guard let raw = json["behavior"]?.string else { return fallback }
            guard let value = SplitBehavior(rawValue: raw) else { throw fail("unknown split behavior `\(raw)`") }
            return value
        }
        switch type {
        case "BertPreTokenizer": self = .bert
        case "Whitespace": self = .whitespace
        case "WhitespaceSplit": self = .whitespaceSplit
        case "Punctuation": self = .punctuation(try behavior(.isolated))
        case "Digits": self = .digits(individual: json["individual_digits"]?.bool ?? false)
        case "ByteLevel": self = .byteLevel(addPrefixSpace: json["add_prefix_space"]?.bool ?? true, useRegex: json["use_regex"]?.bool ?? true)
        case "Metaspace":
            let replacement = json["replacement"]?.string?.unicodeScalars.first ?? "\u{2581}"
            // Older files: `add_prefix_space` in place of `prepend_scheme`.
            let prepend = json["prepend_scheme"]?.string ?? ((json["add_prefix_space"]?.bool ?? true) ? "always" : "never")
            guard ["always", "first", "never"].contains(prepend) else { throw fail("unknown Metaspace prepend_scheme `\(prepend)`") }
            self = .metaspace(replacement: replacement, prepend: prepend, split: json["split"]?.bool ?? true)
        case "Split":
            self = .split(
                pattern: try literalPattern(json["pattern"], in: "the Split pre-tokenizer"), behavior: try behavior(.removed),
                invert: json["invert"]?.bool ?? false)
        case "Sequence":
            var parts: [PreTokenizer] = []
            for item in json["pretokenizers"]?.elements ?? [] { parts.append(try PreTokenizer(item)) }
            self = .sequence(parts)
        case "CharDelimiterSplit", "UnicodeScripts", "FixedLength":
            throw fail("the \(type) pre-tokenizer is not supported yet")
        default:
            throw fail("unknown pre-tokenizer `\(type)`")
        }
    }

    /// The words of one piece of text. `first` says whether the piece starts the input (for
    /// Metaspace's `prepend_scheme: first`).
    func apply(_ pieces: [ArraySlice<Unicode.Scalar>], first: Bool) -> [ArraySlice<Unicode.Scalar>] {
        switch self {
        case .bert:
            return pieces.flatMap { piece in
                splitPiece(piece, behavior: .removed, where: TextClass.isWhitespace).flatMap {
                    splitPiece($0, behavior: .isolated, where: TextClass.isPunctuation)
                }
            }
        case .whitespace:
            // `\w+|[^\w\s]+`: runs of word characters, runs of other non-space characters.
            return pieces.flatMap { piece -> [ArraySlice<Unicode.Scalar>] in
                var out: [ArraySlice<Unicode.Scalar>] = []
                var i = piece.startIndex
                while i < piece.endIndex {
                    let c = piece[i]
                    if TextClass.isWhitespace(c) { i += 1; continue }
                    let word = TextClass.isWord(c)
                    var end = i + 1
                    while end < piece.endIndex, !TextClass.isWhitespace(piece[end]), TextClass.isWord(piece[end]) == word { end += 1 }
                    out.append(piece[i..<end])
                    i = end
                }
                return out
            }
        case .whitespaceSplit:
            return pieces.flatMap { splitPiece($0, behavior: .removed, where: TextClass.isWhitespace) }
        case .punctuation(let behavior):
            return pieces.flatMap { splitPiece($0, behavior: behavior, where: TextClass.isPunctuation) }
        case .digits(let individual):
            return pieces.flatMap { splitPiece($0, behavior: individual ? .isolated : .contiguous, where: TextClass.isNumber) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [ArraySlice<Unicode.Scalar>] in
                var text = piece
                if addPrefixSpace, text.first != " " { text = ([" "] + Array(piece))[...] }
                let words = useRegex ? ByteLevel.split(text) : [text]
                return words.map { ByteLevel.mapped($0)[...] }
            }
        case .metaspace(let replacement, let prepend, let splits):
            return pieces.flatMap { piece -> [ArraySlice<Unicode.Scalar>] in
                var text = piece.map { $0 == " " ? replacement : $0 }
                if prepend == "always" || (prepend == "first" && first), text.first != replacement { text.insert(replacement, at: 0) }
                return splits ? splitPiece(text[...], behavior: .mergedWithNext) { $0 == replacement } : [text[...]]
            }
        case .split(let pattern, let behavior, let invert):
            return pieces.flatMap { piece in Self.splitLiteral(piece, pattern: pattern, behavior: behavior, invert: invert) }
        case .sequence(let parts):
            return parts.reduce(pieces) { $1.apply($0, first: first) }
        }
    }

    /// A split on a literal pattern: its matches are the delimiters (with `invert`, the words).
    private static func splitLiteral(
        _ piece: ArraySlice<Unicode.Scalar>, pattern: Scalars, behavior: SplitBehavior, invert: Bool
    ) -> [ArraySlice<Unicode.Scalar>] {
        guard !pattern.isEmpty else { return [piece] }
        // (range, isMatch) segments covering the piece.
        var segments: [(Range<Int>, Bool)] = []
        var start = piece.startIndex, i = piece.startIndex
        while i + pattern.count <= piece.endIndex {
            if piece[i] == pattern[0], piece[i..<i + pattern.count].elementsEqual(pattern) {
                if start < i { segments.append((start..<i, false)) }
                segments.append((i..<i + pattern.count, true))
                i += pattern.count
                start = i
            } else {
                i += 1
            }
        }
        if start < piece.endIndex { segments.append((start..<piece.endIndex, false)) }
        if invert { segments = segments.map { ($0.0, !$0.1) } }
        var out: [ArraySlice<Unicode.Scalar>] = []
        var pending: Range<Int>?
        for (index, (range, isDelimiter)) in segments.enumerated() {
            if !isDelimiter {
                if let carried = pending { out.append(piece[carried.lowerBound..<range.upperBound]); pending = nil } else { out.append(piece[range]) }
                continue
            }
            switch behavior {
            case .removed: break
            case .isolated: out.append(piece[range])
            case .mergedWithPrevious:
                if let last = out.last, index > 0, !segments[index - 1].1 {
                    out[out.count - 1] = piece[last.startIndex..<range.upperBound]
                } else {
                    out.append(piece[range])
                }
            case .mergedWithNext:
                if let carried = pending { out.append(piece[carried]) }
                pending = range
            case .contiguous:
                if let last = out.last, index > 0, segments[index - 1].1 {
                    out[out.count - 1] = piece[last.startIndex..<range.upperBound]
                } else {
                    out.append(piece[range])
                }
            }
        }
        if let carried = pending { out.append(piece[carried]) }
        return out
    }
}

/// GPT-2's byte-level pre-tokenization: its split pattern, scanned by hand, and each UTF-8 byte
/// written as the printable character GPT-2's `bytes_to_unicode` gives it.
enum ByteLevel {
    /// byte → scalar, as `bytes_to_unicode`.
    static let byteScalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt32(byte))!
            } else {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static func mapped(_ word: ArraySlice<Unicode.Scalar>) -> Scalars {
        var out = Scalars()
        out.reserveCapacity(word.count)
        for c in word {
            if c.value < 0x80 {
                out.append(byteScalars[Int(c.value)])
            } else {
                for byte in Unicode.UTF8.encode(c)! { out.append(byteScalars[Int(byte)]) }
            }
        }
        return out
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, leftmost
    /// first, as Oniguruma matches it.
    static func split(_ text: ArraySlice<Unicode.Scalar>) -> [ArraySlice<Unicode.Scalar>] {
        var out: [ArraySlice<Unicode.Scalar>] = []
        var i = text.startIndex
        let end = text.endIndex
        @inline(__always) func isOther(_ c: Unicode.Scalar) -> Bool { !TextClass.isWhitespace(c) && !TextClass.isLetter(c) && !TextClass.isNumber(c) }
        while i < end {
            let c = text[i]
            if c == "'", i + 1 < end {
                let a = text[i + 1]
                if a == "s" || a == "t" || a == "m" || a == "d" {
                    out.append(text[i..<i + 2]); i += 2; continue
                }
                if i + 2 < end {
                    let b = text[i + 2]
                    if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") {
                        out.append(text[i..<i + 3]); i += 3; continue
                    }
                }
            }
            var matched = false
            for run in [TextClass.isLetter, TextClass.isNumber, isOther] as [(Unicode.Scalar) -> Bool] {
                // ` ?X+`: with the space when X follows it, else X from here.
                let start = c == " " && i + 1 < end && run(text[i + 1]) ? i + 1 : run(c) ? i : -1
                guard start >= 0 else { continue }
                var k = start + 1
                while k < end, run(text[k]) { k += 1 }
                out.append(text[i..<k])
                i = k
                matched = true
                break
            }
            if matched { continue }
            // White space: a run, less its last character when text follows it.
            var k = i
            while k < end, TextClass.isWhitespace(text[k]) { k += 1 }
            if k == i { k = i + 1 }  // not reached: every character is in one of the classes
            if k < end, k - i >= 2 { k -= 1 }
            out.append(text[i..<k])
            i = k
        }
        return out
    }
}
