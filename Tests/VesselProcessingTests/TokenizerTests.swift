import Foundation
import Testing
import VesselManifest
import VesselProcessing
import VesselTensor
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
        let expected = try JSONDecoder().decode(
            [String: [String: [[Int]]]].self,
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
            check(
                "truncated pair", index, try tokenizer.encode(corpus[index], pair: corpus[60 + index], maxLength: 16).ids, expected["truncated_pairs"]![index])
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
            (
                #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}, "model": {"type": "WordLevel", "vocab": {"a": 0}}}"#,
                "regular expression"
            ),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"], "dropout": 0.1}}"#, "dropout"),
            (#"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}"#, "merge 0"),
            (#"{"vocab": {}}"#, "not a tokenizer.json"),
            ("[1, 2", "not JSON")
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

/// The `tokenize` and `pool` steps in a plan: what they serve, what they give the model, and
/// what they refuse.
@Suite("text steps")
struct TextStepTests {
    static func plan(
        sequence: Dim = .dynamic(name: "sequence"), idsType: DType = .int64, parameters: [String: Value] = [:],
        post: [ProcessingStep] = []
    ) throws -> ProcessingPlan {
        let reference = try TokenizerTests.reference.get()
        let signature = Signature(
            inputs: [
                TensorSpec(name: "input_ids", dtype: idsType, shape: [.dynamic(name: "batch"), sequence]),
                TensorSpec(name: "attention_mask", dtype: .int64, shape: [.dynamic(name: "batch"), sequence]),
                TensorSpec(name: "token_type_ids", dtype: .int32, shape: [.dynamic(name: "batch"), sequence])
            ],
            outputs: [TensorSpec(name: "hidden", dtype: .float32, shape: [.dynamic(name: "batch"), sequence, .fixed(2)])])
        var step: [String: Value] = ["input": .string("input_ids"), "file": .string("bert-uncased.json")]
        step.merge(parameters) { $1 }
        return try ProcessingPlan(signature: signature, preprocess: [ProcessingStep(type: "tokenize", parameters: step)], postprocess: post)
            .loadingFiles { path in Array(try Data(contentsOf: URL(fileURLWithPath: reference.directory + "/" + path))) }
    }

    static func tokenizer() throws -> Tokenizer {
        try Tokenizer(json: Array(try Data(contentsOf: URL(fileURLWithPath: try TokenizerTests.reference.get().directory + "/bert-uncased.json"))))
    }

    @Test("text in place of ids, mask and type ids, padded to the batch's longest (or the model's fixed length), in the model's dtypes")
    func served() throws {
        let plan = try Self.plan()
        #expect(plan.served.inputs.map(\.name) == ["text"])
        #expect(plan.served.inputs.first?.dtype == .string)
        let texts = ["Hello, world!", "a much longer sentence than the first one, with café accents"]
        let out = try plan.preprocess(["text": Tensor(strings: texts, shape: [2])])
        let tokenizer = try Self.tokenizer()
        let padded = tokenizer.pad(try texts.map { try tokenizer.encode($0) }, id: tokenizer.padID ?? 0)
        #expect(out["input_ids"]?.shape == [2, padded[0].ids.count])
        #expect(out["input_ids"]?.integers() == padded.flatMap(\.ids))
        #expect(out["attention_mask"]?.integers() == padded.flatMap(\.attentionMask))
        #expect(out["token_type_ids"]?.dtype == .int32)
        #expect(out["text"] == nil)

        let fixed = try Self.plan(sequence: .fixed(32))
        #expect(try fixed.preprocess(["text": Tensor(strings: ["hi"], shape: [1])])["input_ids"]?.shape == [1, 32])
        let pairs = try Self.plan(parameters: ["pair": .string("second")])
        #expect(pairs.served.inputs.map(\.name) == ["text", "second"])
        let both = try pairs.preprocess(["text": Tensor(strings: ["a question"], shape: [1]), "second": Tensor(strings: ["an answer"], shape: [1])])
        #expect(both["input_ids"]?.integers() == (try tokenizer.encode("a question", pair: "an answer")).ids)
        #expect(both["token_type_ids"]?.integers().contains(1) == true)
    }

    @Test("past max_length: a 400-class error naming the item unless truncation is declared; non-text and non-UTF-8 refused")
    func limits() throws {
        let long = String(repeating: "word ", count: 40)
        let strict = try Self.plan(parameters: ["max_length": .int(8)])
        #expect(throws: ProcessingError.self) { try strict.preprocess(["text": Tensor(strings: ["fine", long], shape: [2])]) }
        do { _ = try strict.preprocess(["text": Tensor(strings: ["fine", long], shape: [2])]) } catch {
            #expect(error.description.contains("item 1") && error.description.contains("over max_length 8"), "\(error)")
        }
        let cut = try Self.plan(parameters: ["max_length": .int(8), "truncate": .bool(true)])
        #expect(try cut.preprocess(["text": Tensor(strings: [long], shape: [1])])["input_ids"]?.shape == [1, 8])
        #expect(throws: ProcessingError.self) { try cut.preprocess(["text": Tensor([1.0], shape: [1])]) }
        #expect(throws: ProcessingError.self) { try cut.preprocess(["text": Tensor(strings: [BytesElement.string([0xFF, 0xFE])], shape: [1])]) }
        #expect(throws: ProcessingError.self) { try cut.preprocess([:]) }
    }

    @Test(
        "a step that cannot fit is refused when the plan compiles",
        arguments: [
            ("float ids", "integer token ids"),
            ("max_length over the fixed length", "takes sequences of 16"),
            ("truncate without a length", "needs `max_length`"),
            ("text names a model input", "already a model input"),
            ("unknown padding", "`padding` must be")
        ])
    func refusedAtCompile(what: String, message: String) throws {
        do {
            switch what {
            case "float ids": _ = try Self.plan(idsType: .float32)
            case "max_length over the fixed length": _ = try Self.plan(sequence: .fixed(16), parameters: ["max_length": .int(32)])
            case "truncate without a length": _ = try Self.plan(parameters: ["truncate": .bool(true)])
            case "text names a model input": _ = try Self.plan(parameters: ["text": .string("attention_mask"), "attention_mask": .string("token_type_ids")])
            default: _ = try Self.plan(parameters: ["padding": .string("sideways")])
            }
            Issue.record("\(what) compiled")
        } catch {
            #expect("\(error)".contains(message), "\(what): \(error)")
        }
    }

    @Test("pool: the masked mean (sentence-transformers'), cls and max, scaled to unit length when asked")
    func pool() throws {
        let post = [
            ProcessingStep(type: "pool", parameters: ["output": .string("hidden"), "normalize": .bool(true), "as": .string("embedding")]),
            ProcessingStep(type: "pool", parameters: ["output": .string("hidden"), "mode": .string("max"), "as": .string("peak")]),
            ProcessingStep(type: "pool", parameters: ["output": .string("hidden"), "mode": .string("cls"), "as": .string("first")])
        ]
        let plan = try Self.plan(post: post)
        #expect(plan.served.outputs.map(\.name) == ["hidden", "embedding", "peak", "first"])
        #expect(plan.served.outputs[1].shape.count == 2)
        // Two tokens kept, the third padding: the mean of (3, 4) and (5, 6) is (4, 5); unit length (0.625, 0.781).
        let hidden = Tensor([3, 4, 5, 6, 100, 100] as [Float], shape: [1, 3, 2])
        let out = try plan.postprocess(["hidden": hidden], inputs: ["attention_mask": Tensor([1, 1, 0] as [Int64], shape: [1, 3])])
        let embedding = try #require(out["embedding"]?.doubles())
        #expect(abs(embedding[0] - 4 / 41.0.squareRoot()) < 1e-6 && abs(embedding[1] - 5 / 41.0.squareRoot()) < 1e-6)
        #expect(out["peak"]?.doubles() == [5, 6])
        #expect(out["first"]?.doubles() == [3, 4])
    }

    @Test("rename and drop decide which outputs clients get, under which names")
    func renameAndDrop() throws {
        let post = [
            ProcessingStep(type: "pool", parameters: ["output": .string("hidden"), "as": .string("pooled")]),
            ProcessingStep(type: "drop", parameters: ["output": .string("hidden")]),
            ProcessingStep(type: "rename", parameters: ["output": .string("pooled"), "as": .string("vector")])
        ]
        let plan = try Self.plan(post: post)
        #expect(plan.served.outputs.map(\.name) == ["vector"])
        let out = try plan.postprocess(
            ["hidden": Tensor([1, 2, 3, 4] as [Float], shape: [1, 2, 2])],
            inputs: ["attention_mask": Tensor([1, 1] as [Int64], shape: [1, 2])])
        #expect(Array(out.keys) == ["vector"])
        #expect(out["vector"]?.doubles() == [2, 3])
        #expect(throws: ProcessingError.self) { try Self.plan(post: [ProcessingStep(type: "drop", parameters: ["output": .string("hidden")])]) }
        #expect(throws: ProcessingError.self) {
            try Self.plan(post: [
                ProcessingStep(type: "pool", parameters: ["output": .string("hidden"), "as": .string("p")]),
                ProcessingStep(type: "rename", parameters: ["output": .string("hidden"), "as": .string("p")])
            ])
        }
    }
}
