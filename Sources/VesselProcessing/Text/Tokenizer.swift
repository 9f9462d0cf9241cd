import VesselJSON

/// A Hugging Face `tokenizer.json`, run natively: added (special) tokens matched first, then
/// the normalizer, the pre-tokenizer and the model (WordPiece, BPE or WordLevel) on the rest,
/// then truncation, the post-processor's special tokens and type ids, and padding — the order
/// and the semantics of the `tokenizers` library, whose ids the tests compare with on a corpus.
///
/// What this build does not run (Unigram, NFKC, regular-expression patterns…) is refused when the
/// file loads, with the part named, never skipped.
public struct Tokenizer: Sendable {
    public struct Encoding: Sendable, Equatable {
        public var ids: [Int]
        public var typeIDs: [Int]
        public var attentionMask: [Int]
    }

    /// Text that does not fit: longer than `max_length` with truncation off.
    public struct TooLong: Error, Sendable {
        public var tokens: Int
        public var maxLength: Int
    }

    public enum Direction: String, Sendable { case left = "Left", right = "Right" }

    public struct Truncation: Sendable {
        public var maxLength: Int
        public var strategy: String
        public var direction: Direction
    }

    public struct Padding: Sendable {
        /// nil: to the longest of the batch.
        public var fixed: Int?
        public var multipleOf: Int?
        public var id: Int
        public var typeID: Int
        public var direction: Direction
    }

    struct AddedToken: Sendable {
        var content: Scalars
        var id: Int
        var singleWord: Bool
        var lstrip: Bool
        var rstrip: Bool
        var normalized: Bool
    }

    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: TokenizerModel
    let template: Template
    /// Added tokens matched on the raw text, and (their content normalized) on the normalized.
    let rawAdded: [AddedToken]
    let normalizedAdded: [AddedToken]
    public let truncation: Truncation?
    public let padding: Padding?
    /// The id of the padding token when the file names one but no padding.
    public let padID: Int?

    public init(json bytes: [UInt8]) throws {
        let json: JSONValue
        do { json = try FastJSON.parse(bytes[...], exactKeys: true) } catch { throw TokenizerFileError(description: "not JSON: \(error)") }
        guard json.members != nil, let modelJSON = json["model"] else { throw TokenizerFileError(description: "has no `model`: not a tokenizer.json") }
        normalizer = try json["normalizer"].flatMap { $0.isNull ? nil : try Normalizer($0) }
        preTokenizer = try json["pre_tokenizer"].flatMap { $0.isNull ? nil : try PreTokenizer($0) }
        model = try TokenizerModel(modelJSON)
        if let post = json["post_processor"], !post.isNull {
            template = post["type"]?.string == "Sequence" ? try Template.sequence(post) : try Template(post)
        } else {
            template = .plain
        }
        var raw: [AddedToken] = [], normalized: [AddedToken] = []
        for item in json["added_tokens"]?.elements ?? [] {
            guard let content = item["content"]?.string, !content.isEmpty, let id = item["id"]?.int else {
                throw TokenizerFileError(description: "an added token needs `content` and `id`")
            }
            let special = item["special"]?.bool ?? false
            var token = AddedToken(
                content: Array(content.unicodeScalars), id: id, singleWord: item["single_word"]?.bool ?? false,
                lstrip: item["lstrip"]?.bool ?? false, rstrip: item["rstrip"]?.bool ?? false,
                normalized: item["normalized"]?.bool ?? !special)
            if token.normalized {
                if let normalizer { token.content = normalizer.apply(token.content) }
                if !token.content.isEmpty { normalized.append(token) }
            } else {
                raw.append(token)
            }
        }
        rawAdded = raw
        normalizedAdded = normalized
        if let item = json["truncation"], !item.isNull {
            guard let maxLength = item["max_length"]?.int, maxLength >= 0 else { throw TokenizerFileError(description: "truncation needs max_length") }
            let strategy = item["strategy"]?.string ?? "LongestFirst"
            guard ["LongestFirst", "OnlyFirst", "OnlySecond"].contains(strategy) else {
                throw TokenizerFileError(description: "unknown truncation strategy `\(strategy)`")
            }
            truncation = Truncation(
                maxLength: maxLength, strategy: strategy,
                direction: Direction(rawValue: item["direction"]?.string ?? "Right") ?? .right)
        } else {
            truncation = nil
        }
        if let item = json["padding"], !item.isNull {
            padding = Padding(
                fixed: item["strategy"]?["Fixed"]?.int, multipleOf: item["pad_to_multiple_of"]?.int,
                id: item["pad_id"]?.int ?? 0, typeID: item["pad_type_id"]?.int ?? 0,
                direction: Direction(rawValue: item["direction"]?.string ?? "Right") ?? .right)
        } else {
            padding = nil
        }
        let vocab = model.vocab
        padID = padding?.id ?? ["[PAD]", "<pad>", "<|padding|>", "<|endoftext|>"].lazy.compactMap { vocab[Token($0)] }.first
    }

    /// How many special tokens the post-processor adds.
    public func addedCount(pair: Bool) -> Int { template.addedCount(pair: pair) }

    /// The ids of one text (and its pair), with special tokens. Truncated to `maxLength` (special
    /// tokens included) when `truncate`; otherwise longer text throws ``TooLong``.
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil, truncate: Bool = true) throws -> Encoding {
        var first = try ids(of: text)
        var second = try pair.map { try ids(of: $0) }
        let isPair = second != nil
        if let maxLength {
            let budget = max(0, maxLength - template.addedCount(pair: isPair))
            let total = first.count + (second?.count ?? 0)
            if total > budget {
                guard truncate else { throw TooLong(tokens: total + template.addedCount(pair: isPair), maxLength: maxLength) }
                let direction = truncation?.direction ?? .right
                func cut(_ ids: inout [Int], to length: Int) {
                    guard ids.count > length else { return }
                    ids = direction == .right ? Array(ids.prefix(length)) : Array(ids.suffix(length))
                }
                switch (truncation?.strategy ?? "LongestFirst", second) {
                case ("OnlySecond", var b?) where b.count >= total - budget:
                    cut(&b, to: b.count - (total - budget))
                    second = b
                case ("LongestFirst", var b?):
                    var n1 = min(first.count, b.count), n2 = max(first.count, b.count)
                    n2 = n1 > budget ? n1 : max(n1, budget - n1)
                    if n1 + n2 > budget {
                        n1 = budget / 2
                        n2 = n1 + budget % 2
                    }
                    if first.count > b.count { swap(&n1, &n2) }
                    cut(&first, to: n1)
                    cut(&b, to: n2)
                    second = b
                default:
                    guard first.count >= total - budget else { throw TooLong(tokens: total + template.addedCount(pair: isPair), maxLength: maxLength) }
                    cut(&first, to: first.count - (total - budget))
                }
            }
        }
        var encoding = Encoding(ids: [], typeIDs: [], attentionMask: [])
        for piece in isPair ? template.pair : template.single {
            switch piece {
            case .special(let ids, let typeID):
                encoding.ids += ids
                encoding.typeIDs += Array(repeating: typeID, count: ids.count)
            case .sequence(let isFirst, let typeID):
                let ids = isFirst ? first : second ?? []
                encoding.ids += ids
                encoding.typeIDs += Array(repeating: typeID, count: ids.count)
            }
        }
        encoding.attentionMask = Array(repeating: 1, count: encoding.ids.count)
        return encoding
    }

    /// Encodings padded to one length: `length`, else the padding's fixed length, else the
    /// longest (rounded up to `pad_to_multiple_of`), with `id`, else the file's padding id.
    public func pad(_ encodings: [Encoding], to length: Int? = nil, id: Int? = nil) -> [Encoding] {
        var target = length ?? padding?.fixed ?? encodings.map(\.ids.count).max() ?? 0
        if length == nil, let multiple = padding?.multipleOf, multiple > 0, target % multiple != 0 { target += multiple - target % multiple }
        let id = id ?? padding?.id ?? padID ?? 0, typeID = padding?.typeID ?? 0
        let left = padding?.direction == .left
        return encodings.map { encoding in
            let missing = target - encoding.ids.count
            guard missing > 0 else { return encoding }
            let ids = Array(repeating: id, count: missing), types = Array(repeating: typeID, count: missing), zeros = Array(repeating: 0, count: missing)
            return left
                ? Encoding(ids: ids + encoding.ids, typeIDs: types + encoding.typeIDs, attentionMask: zeros + encoding.attentionMask)
                : Encoding(ids: encoding.ids + ids, typeIDs: encoding.typeIDs + types, attentionMask: encoding.attentionMask + zeros)
        }
    }

    /// The ids of one text, without special tokens from the post-processor.
    func ids(of text: String) throws -> [Int] {
        var out: [Int] = []
        let scalars = Array(text.unicodeScalars)
        if scalars.isEmpty { return out }
        var first = true
        for (segment, token) in Self.splitAdded(scalars[...], rawAdded) {
            if let token { out.append(token); first = false; continue }
            let normalized = normalizer?.apply(Array(segment)) ?? Array(segment)
            for (piece, inner) in Self.splitAdded(normalized[...], normalizedAdded) {
                if let inner { out.append(inner); continue }
                let words = preTokenizer?.apply([piece], first: first && piece.startIndex == 0 && segment.startIndex == 0) ?? [piece]
                for word in words where !word.isEmpty { try model.tokenize(word, into: &out) }
            }
            first = false
        }
        return out
    }

    /// The text cut around added tokens, leftmost and then longest match first, as the
    /// library's Aho-Corasick search: (segment, nil) for plain text, (_, id) for a token.
    static func splitAdded(_ text: ArraySlice<Unicode.Scalar>, _ tokens: [AddedToken]) -> [(ArraySlice<Unicode.Scalar>, Int?)] {
        guard !tokens.isEmpty, !text.isEmpty else { return [(text, nil)] }
        var out: [(ArraySlice<Unicode.Scalar>, Int?)] = []
        var plainStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            var best: AddedToken?
            for token in tokens
            where token.content.count <= text.endIndex - i && token.content.first == text[i] && (best == nil || token.content.count > best!.content.count) {
                if text[i..<i + token.content.count].elementsEqual(token.content) { best = token }
            }
            guard let token = best else { i += 1; continue }
            var start = i, stop = i + token.content.count
            if token.singleWord {
                let before = start == text.startIndex || !TextClass.isWord(text[start - 1])
                let after = stop == text.endIndex || !TextClass.isWord(text[stop])
                if !before || !after { i = stop; continue }
            }
            if token.lstrip { while start > plainStart, TextClass.isWhitespace(text[start - 1]) { start -= 1 } }
            if token.rstrip { while stop < text.endIndex, TextClass.isWhitespace(text[stop]) { stop += 1 } }
            if plainStart < start { out.append((text[plainStart..<start], nil)) }
            out.append((text[start..<stop], token.id))
            plainStart = stop
            i = stop
        }
        if plainStart < text.endIndex { out.append((text[plainStart..<text.endIndex], nil)) }
        return out
    }
}
