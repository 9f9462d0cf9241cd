import VesselManifest
import VesselTensor

/// The `tokenize` step: a batch of texts (and, for pairs, second texts) into the model's token
/// ids, attention mask and token type ids, through a tokenizer.json.
struct TokenizeSpec: Sendable {
    var file: String
    /// The served string inputs.
    var text: String
    var pair: String?
    /// The model inputs it writes besides the ids (`input:`); nil: the model has none.
    var attentionMask: String?
    var tokenTypeIDs: String?
    var maxLength: Int?
    var truncate: Bool?
    /// `padding: longest`: to the batch's longest text, whatever the tokenizer file says.
    var padLongest = false
    /// Set when the plan compiles: the model's sequence length when fixed, and the dtypes.
    var fixedLength: Int?
    var dtypes: (ids: DType, mask: DType, types: DType) = (.int64, .int64, .int64)
    /// Set when the plan reads its files.
    var tokenizer: Tokenizer?

    init(_ parameters: [String: Value]) throws(StepFailure) {
        guard case .string(let file)? = parameters["file"] else { throw StepFailure("needs `file`, a tokenizer.json") }
        self.file = file
        if case .string(let name)? = parameters["text"] { text = name } else { text = "text" }
        if case .string(let name)? = parameters["pair"] { pair = name }
        if case .string(let name)? = parameters["attention_mask"] { attentionMask = name }
        if case .string(let name)? = parameters["token_type_ids"] { tokenTypeIDs = name }
        if case .int(let length)? = parameters["max_length"] {
            guard length >= 1, length <= 1 << 20 else { throw StepFailure("`max_length` must be from 1 to 1048576") }
            maxLength = length
        }
        if case .bool(let flag)? = parameters["truncate"] { truncate = flag }
        if case .string(let mode)? = parameters["padding"] {
            guard mode == "longest" || mode == "tokenizer" else { throw StepFailure("`padding` must be longest or tokenizer") }
            padLongest = mode == "longest"
        }
        if pair == text { throw StepFailure("`pair` and `text` name the same input") }
    }

    /// The longest sequence, special tokens included: the step's `max_length`, else the
    /// tokenizer's truncation length, else the model's fixed length.
    var limit: Int? { maxLength ?? tokenizer?.truncation?.maxLength ?? fixedLength }

    /// Checks the model inputs the step writes, and what clients send in their place.
    mutating func served(ids: TensorSpec, inputs: [TensorSpec]) throws(StepFailure) -> [TensorSpec] {
        func check(_ spec: TensorSpec, _ role: String) throws(StepFailure) -> DType {
            guard !spec.dtype.isFloatingPoint, spec.dtype != .string, spec.dtype != .bool else {
                throw StepFailure("writes integer \(role), but `\(spec.name)` is \(spec.dtype.rawValue)")
            }
            guard spec.shape.count == 2 else { throw StepFailure("writes \(role) as [batch, sequence], but `\(spec.name)` has rank \(spec.shape.count)") }
            if case .fixed(let length) = spec.shape[1] {
                if let fixedLength, fixedLength != length { throw StepFailure("`\(spec.name)` has sequence length \(length), `\(ids.name)` \(fixedLength)") }
                fixedLength = length
            }
            return spec.dtype
        }
        dtypes.ids = try check(ids, "token ids")
        for (name, role) in [(attentionMask, "an attention mask"), (tokenTypeIDs, "token type ids")] {
            guard let name else { continue }
            guard let spec = inputs.first(where: { $0.name == name }) else {
                throw StepFailure("names `\(name)` for \(role), which the signature does not have")
            }
            let dtype = try check(spec, role)
            if name == attentionMask { dtypes.mask = dtype } else { dtypes.types = dtype }
        }
        if let maxLength, let fixedLength, maxLength > fixedLength {
            throw StepFailure("`max_length` is \(maxLength), but the model takes sequences of \(fixedLength)")
        }
        if truncate == true, limit == nil, tokenizer == nil {
            // Known once the tokenizer is read; until then only the step and the model can say.
            if maxLength == nil, fixedLength == nil { throw StepFailure("`truncate: true` needs `max_length` (or a model with a fixed sequence length)") }
        }
        let batch = ids.shape[0]
        var served = [TensorSpec(name: text, dtype: .string, shape: [batch], description: "text, tokenized with \(file)")]
        if let pair {
            served.append(TensorSpec(name: pair, dtype: .string, shape: [batch], description: "the second text of each pair, tokenized with \(file)"))
        }
        return served
    }

    /// The model's inputs for a batch of texts.
    func run(_ values: [String: Tensor], ids name: String) throws(StepFailure) -> [String: Tensor] {
        guard let tokenizer else { throw StepFailure("\(file) was not read") }
        func texts(_ input: String) throws(StepFailure) -> [String] {
            guard let tensor = values[input] else { throw StepFailure("input `\(input)` is missing") }
            guard tensor.dtype == .string, tensor.rank == 1 || (tensor.rank == 2 && tensor.shape[1] == 1) else {
                throw StepFailure("input `\(input)` takes a list of texts (BYTES [N]), got \(tensor.dtype.rawValue)\(tensor.shape)")
            }
            // Bytes that are not UTF-8 arrive as an octet-stream data URI (BytesElement).
            if let index = tensor.strings.firstIndex(where: BytesElement.isBinary) {
                throw StepFailure("`\(input)` item \(index) is not UTF-8 text")
            }
            return tensor.strings
        }
        let first = try texts(text)
        let second = try pair.map { name throws(StepFailure) in try texts(name) }
        if let second, second.count != first.count { throw StepFailure("`\(text)` has \(first.count) texts, `\(pair!)` \(second.count)") }
        let limit = self.limit
        let cut = truncate ?? (tokenizer.truncation != nil)
        var encodings: [Tokenizer.Encoding] = []
        encodings.reserveCapacity(first.count)
        for (index, item) in first.enumerated() {
            do {
                encodings.append(try tokenizer.encode(item, pair: second?[index], maxLength: limit, truncate: cut))
            } catch let error as Tokenizer.TooLong {
                throw StepFailure(
                    "`\(text)` item \(index) is \(error.tokens) tokens, over max_length \(error.maxLength); shorten it, or declare `truncate: true` to cut it")
            } catch {
                throw StepFailure("`\(text)` item \(index): \(error)")
            }
        }
        let padded = tokenizer.pad(encodings, to: fixedLength ?? (padLongest ? encodings.map(\.ids.count).max() ?? 0 : nil))
        let length = padded.first?.ids.count ?? (fixedLength ?? 0)
        let shape = [padded.count, length]
        var out = [name: Tensor(converting: padded.flatMap(\.ids).map(Double.init), to: dtypes.ids, shape: shape)]
        if let attentionMask { out[attentionMask] = Tensor(converting: padded.flatMap(\.attentionMask).map(Double.init), to: dtypes.mask, shape: shape) }
        if let tokenTypeIDs { out[tokenTypeIDs] = Tensor(converting: padded.flatMap(\.typeIDs).map(Double.init), to: dtypes.types, shape: shape) }
        return out
    }
}

/// The `pool` step: token embeddings [batch, sequence, hidden] into one vector per text — the
/// mean over the tokens the attention mask keeps (sentence-transformers' mean pooling), the
/// first token's (`cls`) or the maximum — optionally scaled to unit length.
struct PoolSpec: Sendable {
    enum Mode: String, Sendable { case mean, cls, max }
    var mode: Mode
    var mask: String
    var normalize: Bool

    init(_ parameters: [String: Value]) throws(StepFailure) {
        if case .string(let raw)? = parameters["mode"] {
            guard let mode = Mode(rawValue: raw) else { throw StepFailure("`mode` must be mean, cls or max") }
            self.mode = mode
        } else {
            mode = .mean
        }
        if case .string(let name)? = parameters["mask"] { mask = name } else { mask = "attention_mask" }
        if case .bool(let flag)? = parameters["normalize"] { normalize = flag } else { normalize = false }
    }

    func run(_ tensor: Tensor, mask: Tensor?) throws(StepFailure) -> Tensor {
        guard tensor.dtype.isFloatingPoint, tensor.rank == 3 else {
            throw StepFailure("pools [batch, sequence, hidden] floating-point outputs, got \(tensor.dtype.rawValue)\(tensor.shape)")
        }
        let (batch, sequence, hidden) = (tensor.shape[0], tensor.shape[1], tensor.shape[2])
        var keep = [Double](repeating: 1, count: batch * sequence)
        if mode != .cls, let mask {
            guard mask.shape == [batch, sequence] else { throw StepFailure("the mask is \(mask.shape), the output \(tensor.shape)") }
            keep = mask.doubles()
        }
        let values = tensor.doubles()
        var out = [Double](repeating: 0, count: batch * hidden)
        for b in 0..<batch {
            var row = [Double](repeating: mode == .max ? -.infinity : 0, count: hidden)
            switch mode {
            case .cls:
                for h in 0..<hidden { row[h] = values[b * sequence * hidden + h] }
            case .mean:
                var count = 0.0
                for s in 0..<sequence where keep[b * sequence + s] != 0 {
                    count += 1
                    for h in 0..<hidden { row[h] += values[(b * sequence + s) * hidden + h] }
                }
                // As sentence-transformers: the count clamped at 1e-9, so an empty mask gives zeros.
                for h in 0..<hidden { row[h] /= Swift.max(count, 1e-9) }
            case .max:
                for s in 0..<sequence where keep[b * sequence + s] != 0 {
                    for h in 0..<hidden { row[h] = Swift.max(row[h], values[(b * sequence + s) * hidden + h]) }
                }
                for h in 0..<hidden where row[h] == -.infinity { row[h] = 0 }
            }
            if normalize {
                // torch.nn.functional.normalize: divided by max(‖x‖, 1e-12).
                let norm = Swift.max(row.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
                for h in 0..<hidden { row[h] /= norm }
            }
            for h in 0..<hidden { out[b * hidden + h] = row[h] }
        }
        return Tensor(converting: out, to: tensor.dtype, shape: [batch, hidden])
    }
}

/// A step's own failure, before the plan adds its stage and index.
struct StepFailure: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
