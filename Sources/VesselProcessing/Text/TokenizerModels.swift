import VesselJSON

// The `model` of a tokenizer.json: a word (one pre-tokenizer piece) in, token ids out.

/// A vocabulary key compared by its scalars: Swift's `String ==` holds canonically equivalent
/// text equal (`é` and `e` + U+0301), which a vocabulary keeps apart.
struct Token: Hashable, Sendable {
    var text: String
    init(_ text: String) { self.text = text }

    static func == (a: Token, b: Token) -> Bool { a.text.utf8.elementsEqual(b.text.utf8) }

    func hash(into hasher: inout Hasher) {
        var text = self.text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

typealias Vocabulary = [Token: Int]

/// `prefix` + the scalars + `suffix` as one String, its UTF-8 written directly (the generic
/// `unicodeScalars.append(contentsOf:)` was most of a WordPiece run's time).
@inline(__always)
func makeString(_ prefix: String, _ scalars: ArraySlice<Unicode.Scalar>, _ suffix: String = "") -> String {
    var count = prefix.utf8.count + suffix.utf8.count
    for c in scalars {
        let v = c.value
        count += v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4
    }
    return String(unsafeUninitializedCapacity: count) { buffer in
        var i = 0
        for byte in prefix.utf8 { buffer[i] = byte; i += 1 }
        for c in scalars {
            let v = c.value
            if v < 0x80 {
                buffer[i] = UInt8(v); i += 1
            } else if v < 0x800 {
                buffer[i] = UInt8(0xC0 | v >> 6); buffer[i + 1] = UInt8(0x80 | v & 0x3F); i += 2
            } else if v < 0x10000 {
                buffer[i] = UInt8(0xE0 | v >> 12); buffer[i + 1] = UInt8(0x80 | v >> 6 & 0x3F); buffer[i + 2] = UInt8(0x80 | v & 0x3F); i += 3
            } else {
                buffer[i] = UInt8(0xF0 | v >> 18); buffer[i + 1] = UInt8(0x80 | v >> 12 & 0x3F)
                buffer[i + 2] = UInt8(0x80 | v >> 6 & 0x3F); buffer[i + 3] = UInt8(0x80 | v & 0x3F); i += 4
            }
        }
        for byte in suffix.utf8 { buffer[i] = byte; i += 1 }
        return i
    }
}

struct WordPieceModel: Sendable {
    let vocab: Vocabulary
    let unk: Int
    let prefix: String
    let maxInputCharsPerWord: Int

    /// Greedy longest-match-first; a word with a part not in the vocabulary is one unknown token.
    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) {
        if word.count > maxInputCharsPerWord { ids.append(unk); return }
        let mark = ids.count
        var start = word.startIndex
        while start < word.endIndex {
            var end = word.endIndex
            var found: Int?
            while start < end {
                if let id = vocab[Token(makeString(start > word.startIndex ? prefix : "", word[start..<end]))] { found = id; break }
                end -= 1
            }
            guard let id = found else {
                ids.removeSubrange(mark...)
                ids.append(unk)
                return
            }
            ids.append(id)
            start = end
        }
    }
}

struct WordLevelModel: Sendable {
    let vocab: Vocabulary
    let unk: Int?

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) throws(TokenizerFileError) {
        let text = makeString("", word)
        if let id = vocab[Token(text)] ?? unk {
            ids.append(id)
        } else {
            throw TokenizerFileError(description: "`\(text)` is not in the vocabulary and the model has no unk_token")
        }
    }
}

struct BPEModel: Sendable {
    let vocab: Vocabulary
    /// (left id, right id) packed → (rank, merged id).
    let merges: [UInt64: (rank: Int, id: Int)]
    let unk: Int?
    let prefix: String
    let suffix: String
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool

    init(_ json: JSONValue, vocab: Vocabulary) throws(TokenizerFileError) {
        self.vocab = vocab
        if let dropout = json["dropout"]?.number, dropout > 0 {
            throw TokenizerFileError(description: "BPE dropout (\(dropout)) makes tokenization random; set it to null for serving")
        }
        unk = json["unk_token"]?.string.flatMap { vocab[Token($0)] }
        prefix = json["continuing_subword_prefix"]?.string ?? ""
        suffix = json["end_of_word_suffix"]?.string ?? ""
        fuseUnk = json["fuse_unk"]?.bool ?? false
        byteFallback = json["byte_fallback"]?.bool ?? false
        ignoreMerges = json["ignore_merges"]?.bool ?? false
        var merges: [UInt64: (rank: Int, id: Int)] = [:]
        let items = json["merges"]?.elements ?? []
        merges.reserveCapacity(items.count)
        for (rank, item) in items.enumerated() {
            // "a b" (older files) or ["a", "b"].
            let pair: (String, String)
            if let text = item.string {
                let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw TokenizerFileError(description: "merge \(rank) (`\(text)`) is not two tokens") }
                pair = (String(parts[0]), String(parts[1]))
            } else if let parts = item.elements, parts.count == 2, let a = parts[0].string, let b = parts[1].string {
                pair = (a, b)
            } else {
                throw TokenizerFileError(description: "merge \(rank) is neither \"a b\" nor [a, b]")
            }
            // The merged token drops the right side's continuing prefix (compared by bytes: a
            // prefix's last character can join the next into one Character).
            let right =
                !prefix.isEmpty && pair.1.utf8.starts(with: prefix.utf8) ? String(decoding: pair.1.utf8.dropFirst(prefix.utf8.count), as: UTF8.self) : pair.1
            guard let a = vocab[Token(pair.0)], let b = vocab[Token(pair.1)], let merged = vocab[Token(pair.0 + right)] else {
                throw TokenizerFileError(description: "merge \(rank) (`\(pair.0)` `\(pair.1)`) names a token missing from the vocabulary")
            }
            if merges[Self.key(a, b)] == nil { merges[Self.key(a, b)] = (rank, merged) }
        }
        self.merges = merges
    }

    @inline(__always) static func key(_ a: Int, _ b: Int) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) throws(TokenizerFileError) {
        if ignoreMerges {
            let whole = makeString("", word)
            if let id = vocab[Token(whole)] { ids.append(id); return }
        }
        // One symbol per character, with the continuing prefix after the first and the suffix
        // on the last; a character not in the vocabulary is its UTF-8 bytes (byte_fallback) or
        // the unknown token (consecutive ones fused with fuse_unk).
        var symbols: [Int] = []
        symbols.reserveCapacity(word.count)
        var lastWasUnk = false
        for (offset, c) in word.enumerated() {
            let text = makeString(
                offset > 0 ? prefix : "", word[(word.startIndex + offset)...(word.startIndex + offset)],
                offset == word.count - 1 ? suffix : "")
            if let id = vocab[Token(text)] {
                symbols.append(id)
                lastWasUnk = false
                continue
            }
            if byteFallback {
                var bytes: [Int] = []
                for byte in Unicode.UTF8.encode(c)! {
                    let name = "<0x" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2) + ">"
                    guard let id = vocab[Token(name)] else { bytes = []; break }
                    bytes.append(id)
                }
                if !bytes.isEmpty {
                    symbols += bytes
                    lastWasUnk = false
                    continue
                }
            }
            guard let unk else {
                throw TokenizerFileError(description: "`\(c)` is not in the vocabulary and the model has no unk_token")
            }
            if !(fuseUnk && lastWasUnk) { symbols.append(unk) }
            lastWasUnk = true
        }
        // The lowest-ranked adjacent pair merges first, the leftmost among equals.
        while symbols.count > 1 {
            var best = -1, bestRank = Int.max, bestID = 0
            for k in 0..<symbols.count - 1 {
                if let merge = merges[Self.key(symbols[k], symbols[k + 1])], merge.rank < bestRank {
                    best = k
                    bestRank = merge.rank
                    bestID = merge.id
                }
            }
            if best < 0 { break }
            symbols[best] = bestID
            symbols.remove(at: best + 1)
        }
        ids += symbols
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

enum TokenizerModel: Sendable {
    case wordPiece(WordPieceModel)
    case bpe(BPEModel)
    case wordLevel(WordLevelModel)

    init(_ json: JSONValue) throws(TokenizerFileError) {
        let type = json["type"]?.string ?? (json["merges"] != nil ? "BPE" : json["continuing_subword_prefix"] != nil ? "WordPiece" : "")
        var vocab: Vocabulary = [:]
        if type != "Unigram" {
            guard let fields = json["vocab"]?.members else { throw TokenizerFileError(description: "the \(type) model has no `vocab` object") }
            vocab.reserveCapacity(fields.count)
            for (token, value) in fields {
                guard let id = value.int, id >= 0, id < 1 << 31 else { throw TokenizerFileError(description: "vocabulary entry `\(token)` has no valid id") }
                vocab[Token(token)] = id
            }
        }
        switch type {
        case "WordPiece":
            let unkToken = json["unk_token"]?.string ?? "[UNK]"
            guard let unk = vocab[Token(unkToken)] else {
                throw TokenizerFileError(description: "the WordPiece unk_token `\(unkToken)` is not in its vocabulary")
            }
            self = .wordPiece(
                WordPieceModel(
                    vocab: vocab, unk: unk, prefix: json["continuing_subword_prefix"]?.string ?? "##",
                    maxInputCharsPerWord: json["max_input_chars_per_word"]?.int ?? 100))
        case "BPE": self = .bpe(try BPEModel(json, vocab: vocab))
        case "WordLevel": self = .wordLevel(WordLevelModel(vocab: vocab, unk: json["unk_token"]?.string.flatMap { vocab[Token($0)] }))
        case "Unigram": throw TokenizerFileError(description: "Unigram (SentencePiece) tokenizers are not supported yet; WordPiece, BPE and WordLevel are")
        default: throw TokenizerFileError(description: "unknown tokenizer model `\(type)`")
        }
    }

    var vocab: Vocabulary {
        switch self {
        case .wordPiece(let model): model.vocab
        case .bpe(let model): model.vocab
        case .wordLevel(let model): model.vocab
        }
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into ids: inout [Int]) throws(TokenizerFileError) {
        switch self {
        case .wordPiece(let model): model.tokenize(word, into: &ids)
        case .bpe(let model): try model.tokenize(word, into: &ids)
        case .wordLevel(let model): try model.tokenize(word, into: &ids)
        }
    }
}

// MARK: Post-processors

/// Special tokens around one sequence or a pair, with the type id of each part.
struct Template: Sendable {
    enum Piece: Sendable {
        case special(ids: [Int], typeID: Int)
        case sequence(first: Bool, typeID: Int)
    }
    var single: [Piece]
    var pair: [Piece]

    /// The library's default when no post-processor is named: the pair's part has type id 1.
    static let plain = Template(single: [.sequence(first: true, typeID: 0)], pair: [.sequence(first: true, typeID: 0), .sequence(first: false, typeID: 1)])

    init(single: [Piece], pair: [Piece]) {
        self.single = single
        self.pair = pair
    }

    init(_ json: JSONValue) throws(TokenizerFileError) {
        let type = json["type"]?.string ?? ""
        func token(_ value: JSONValue?) throws(TokenizerFileError) -> Int {
            guard let id = value?.elements?.last?.int else { throw TokenizerFileError(description: "\(type) needs [token, id] pairs") }
            return id
        }
        switch type {
        case "BertProcessing":
            let cls = try token(json["cls"]), sep = try token(json["sep"])
            single = [.special(ids: [cls], typeID: 0), .sequence(first: true, typeID: 0), .special(ids: [sep], typeID: 0)]
            pair = single + [.sequence(first: false, typeID: 1), .special(ids: [sep], typeID: 1)]
        case "RobertaProcessing":
            let cls = try token(json["cls"]), sep = try token(json["sep"])
            single = [.special(ids: [cls], typeID: 0), .sequence(first: true, typeID: 0), .special(ids: [sep], typeID: 0)]
            pair = single + [.special(ids: [sep], typeID: 0), .sequence(first: false, typeID: 0), .special(ids: [sep], typeID: 0)]
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            for (name, value) in json["special_tokens"]?.members ?? [] {
                specials[name] = (value["ids"]?.elements ?? []).compactMap(\.int)
            }
            func pieces(_ value: JSONValue?) throws(TokenizerFileError) -> [Piece] {
                var out: [Piece] = []
                for item in value?.elements ?? [] {
                    if let special = item["SpecialToken"] {
                        let name = special["id"]?.string ?? ""
                        guard let ids = specials[name] else {
                            throw TokenizerFileError(description: "the template names special token `\(name)`, which special_tokens does not define")
                        }
                        out.append(.special(ids: ids, typeID: special["type_id"]?.int ?? 0))
                    } else if let sequence = item["Sequence"] {
                        out.append(.sequence(first: sequence["id"]?.string != "B", typeID: sequence["type_id"]?.int ?? 0))
                    } else {
                        throw TokenizerFileError(description: "a template piece is neither SpecialToken nor Sequence")
                    }
                }
                return out
            }
            single = try pieces(json["single"])
            pair = try pieces(json["pair"])
        case "ByteLevel":
            self = .plain
        default:
            throw TokenizerFileError(description: "unknown post-processor `\(type)`")
        }
    }

    /// Several post-processors in a row (`Sequence`): the last one that adds tokens decides.
    static func sequence(_ json: JSONValue) throws(TokenizerFileError) -> Template {
        var result = Template.plain
        for item in json["processors"]?.elements ?? [] where item["type"]?.string != "ByteLevel" {
            result = try Template(item)
        }
        return result
    }

    func addedCount(pair isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { if case .special(let ids, _) = $1 { $0 + ids.count } else { $0 } }
    }
}
