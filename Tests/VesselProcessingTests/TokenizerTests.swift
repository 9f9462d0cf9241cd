import Foundation
import Testing
import VesselProcessing
import VesselTestSupport

/// The native tokenizer against the `tokenizers` library (Reference/tokenizers_reference.py):
/// WordPiece (BERT, cased and uncased), byte-level BPE (GPT-2, RoBERTa), BPE with a continuing
/// prefix, SentencePiece-style BPE (Metaspace, byte fallback) and word level, each trained by the
/// library and run by both on a corpus of 262 sentences — accents, punctuation, numbers, CJK,
/// emoji, control characters, contractions, special tokens in the text, very long — single,
/// paired, truncated to 16 and padded as a batch.
@Suite("tokenizers")
struct TokenizerTests {
    struct Reference {
        var directory: String
        var corpus: [String]
        var expected: [String: [String: [[Int]]]]
    }

    static let reference: Result<Reference, any Error> = Result {
        let directory = try TestSupport.makeTemporaryDirectory("tokenizers-reference")
        let script = TestSupport.packageRoot + "/Tests/VesselProcessingTests/Reference/tokenizers_reference.py"
        let result = try TestSupport.run(TestSupport.python, [script, directory])
        guard result.status == 0 else { throw ReferenceFailed(message: result.standardError) }
        let corpus = try JSONDecoder().decode([String].self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/corpus.json")))
        let expected = try JSONDecoder().decode([String: [String: [[Int]]]].self,
                                                from: Data(contentsOf: URL(fileURLWithPath: directory + "/expected.json")))
        return Reference(directory: directory, corpus: corpus, expected: expected)
    }

    struct ReferenceFailed: Error { var message: String }

    static let names = ["bert-uncased", "bert-cased", "byte-level-bpe", "byte-level-prefix", "bpe-whitespace", "metaspace-bpe", "word-level"]

    @Test("ids equal the tokenizers library's: single texts, pairs with type ids, truncated to 16, padded as a batch", arguments: names)
    func matchesLibrary(name: String) throws {
        let reference = try Self.reference.get()
        let expected = try #require(reference.expected[name])
        let tokenizer = try Tokenizer(json: Array(try Data(contentsOf: URL(fileURLWithPath: "\(reference.directory)/\(name).json"))))
        let corpus = reference.corpus
        var mismatches: [String] = []
        func check(_ what: String, _ index: Int, _ actual: [Int], _ wanted: [Int]) {
            if actual != wanted, mismatches.count < 5 {
                mismatches.append("\(what) \(index) (\(corpus[index].prefix(60).debugDescription)): got \(actual.prefix(40)), the library \(wanted.prefix(40))")
            }
        }
        for (index, text) in corpus.enumerated() {
            check("single", index, try tokenizer.encode(text).ids, expected["single"]![index])
            check("truncated", index, try tokenizer.encode(text, maxLength: 16).ids, expected["truncated"]![index])
        }
        for index in 0..<60 {
            let encoding = try tokenizer.encode(corpus[index], pair: corpus[60 + index])
            check("pair", index, encoding.ids, expected["pairs"]![index])
            check("pair type ids", index, encoding.typeIDs, expected["pair_types"]![index])
            check("truncated pair", index, try tokenizer.encode(corpus[index], pair: corpus[60 + index], maxLength: 16).ids, expected["truncated_pairs"]![index])
        }
        let batch = tokenizer.pad(try corpus.prefix(20).map { try tokenizer.encode($0) }, id: 0)
        for index in 0..<20 {
            check("batch", index, batch[index].ids, expected["batch_ids"]![index])
            check("batch mask", index, batch[index].attentionMask, expected["batch_mask"]![index])
        }
        #expect(mismatches.isEmpty, "\(name):\n\(mismatches.joined(separator: "\n"))")
    }

    @Test("text past max_length with truncation off is refused with its length; what this build cannot run is refused when the file loads")
    func refusals() throws {
        let reference = try Self.reference.get()
        let tokenizer = try Tokenizer(json: Array(try Data(contentsOf: URL(fileURLWithPath: "\(reference.directory)/bert-uncased.json"))))
        #expect(throws: Tokenizer.TooLong.self) { try tokenizer.encode(String(repeating: "word ", count: 50), maxLength: 16, truncate: false) }
        #expect(try tokenizer.encode("short text", maxLength: 16, truncate: false) == tokenizer.encode("short text"))
        let cases: [(String, String)] = [
            (#"{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"#, "Unigram"),
            (#"{"normalizer": {"type": "NFKC"}, "model": {"type": "WordLevel", "vocab": {"a": 0}, "unk_token": "a"}}"#, "NFKC"),
            (#"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}, "model": {"type": "WordLevel", "vocab": {"a": 0}}}"#, "regular expression"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"], "dropout": 0.1}}"#, "dropout"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#, "merge 0"),
            (#"{"vocab": {}}"#, "not a tokenizer.json"),
            ("[1, 2", "not JSON"),
        ]
        for (json, words) in cases {
            do {
                _ = try Tokenizer(json: Array(json.utf8))
                Issue.record("\(json) loaded")
            } catch {
                #expect("\(error)".contains(words), "\(error)")
            }
        }
    }
}
