#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

/// RNN, GRU and LSTM share their inputs, directions, layouts and sequence lengths; this is
/// that frame, with each cell's step as a closure.
struct RecurrentFrame {
    let sequence: Int, batch: Int, inputSize: Int, hidden: Int, directions: Int
    let layout: Int
    let x: [Double]
    let lengths: [Int]
    let clip: Double?
    let activations: [(Double) -> Double]

    init(_ c: KernelContext, _ i: [Tensor?], defaults: [String]) throws {
        let xTensor = try c.input(i, 0)
        layout = c.attributes.int("layout", default: 0)
        let shape = xTensor.shape
        guard shape.count == 3 else { throw c.invalid("X must be 3-D, got \(shape)") }
        let (sequence, batch) = layout == 0 ? (shape[0], shape[1]) : (shape[1], shape[0])
        let inputSize = shape[2]
        (self.sequence, self.batch, self.inputSize) = (sequence, batch, inputSize)
        hidden = try c.attributes.required("hidden_size", c.attributes.int)
        let direction = c.attributes.string("direction", default: "forward")
        directions = direction == "bidirectional" ? 2 : 1
        // Every weight is read by index from these sizes: check the tensors have them.
        guard (1...(1 << 24)).contains(hidden) else { throw c.invalid("hidden_size \(hidden) must be positive") }
        let gates = [1: 1, 2: 3, 3: 4][defaults.count] ?? 1
        let expected: [(Int, String, [Int])] = [
            (1, "W", [directions, gates * hidden, inputSize]), (2, "R", [directions, gates * hidden, hidden]),
            (3, "B", [directions, 2 * gates * hidden]), (4, "sequence_lens", [batch]),
            (5, "initial_h", layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]),
            (6, "initial_c", layout == 0 ? [directions, batch, hidden] : [batch, directions, hidden]), (7, "P", [directions, 3 * hidden])
        ]
        for (index, name, shape) in expected where index < i.count && (index <= 2 || i[index] != nil) && (index != 6 && index != 7 || gates == 4) {
            let tensor = try c.input(i, index)
            guard tensor.shape == shape else {
                throw c.invalid("\(name) has shape \(tensor.shape); hidden_size \(hidden) and X \(xTensor.shape) need \(shape)")
            }
        }
        if i.count > 4, let lengths = i[4], lengths.integers().contains(where: { $0 < 0 || $0 > sequence }) {
            throw c.invalid("sequence_lens \(lengths.integers().prefix(8)) must be within 0…\(sequence)")
        }
        var values = xTensor.doubles()
        if layout == 1 {
            // To [seq, batch, input].
            values = (0..<(sequence * batch * inputSize)).map { index in
                let t = index / (batch * inputSize), b = (index / inputSize) % batch, k = index % inputSize
                return values[(b * sequence + t) * inputSize + k]
            }
        }
        x = values
        lengths = i.count > 4 ? i[4].map { $0.integers() } ?? Array(repeating: sequence, count: batch) : Array(repeating: sequence, count: batch)
        clip = c.attributes.float("clip").map(Double.init)
        let names = c.attributes.strings("activations") ?? Array(repeating: defaults, count: directions).flatMap { $0 }
        var alphas = c.attributes.floats("activation_alpha") ?? [], betas = c.attributes.floats("activation_beta") ?? []
        activations = try names.map { try recurrentActivation($0, alphas: &alphas, betas: &betas, c) }
        guard activations.count == defaults.count * directions else { throw c.invalid("expected \(defaults.count * directions) activations") }
    }

    func clipped(_ value: Double) -> Double {
        guard let clip else { return value }
        return Swift.min(Swift.max(value, -clip), clip)
    }

    /// Runs every direction; `step(direction, t, b, state)` updates the state in place and
    /// returns it. Y holds each step's hidden output; states hold the last valid step's.
    func run(stateCount: Int, initial: [[Double]], step: (Int, Int, Int, inout [[Double]]) -> Void) -> (y: [Double], last: [[Double]]) {
        var y = [Double](repeating: 0, count: sequence * directions * batch * hidden)
        var final = initial
        for d in 0..<directions {
            for b in 0..<batch {
                var state = (0..<stateCount).map { s in Array(initial[s][((d * batch) + b) * hidden..<((d * batch) + b + 1) * hidden]) }
                let length = Swift.min(lengths[b], sequence)
                let reverse = d == 1 || (directions == 1 && directionIsReverse)
                for step_ in 0..<length {
                    let t = reverse ? length - 1 - step_ : step_
                    step(d, t, b, &state)
                    for k in 0..<hidden { y[((t * directions + d) * batch + b) * hidden + k] = state[0][k] }
                }
                for s in 0..<stateCount {
                    for k in 0..<hidden { final[s][((d * batch) + b) * hidden + k] = state[s][k] }
                }
            }
        }
        return (y, final)
    }

    var directionIsReverse = false

    func outputs(_ y: [Double], _ states: [[Double]], dtype: DType) -> [Tensor] {
        var yShape = [sequence, directions, batch, hidden]
        var yValues = y
        var stateShape = [directions, batch, hidden]
        if layout == 1 {
            yShape = [batch, sequence, directions, hidden]
            yValues = (0..<y.count).map { index in
                let b = index / (sequence * directions * hidden), t = (index / (directions * hidden)) % sequence
                let d = (index / hidden) % directions, k = index % hidden
                return y[((t * directions + d) * batch + b) * hidden + k]
            }
            stateShape = [batch, directions, hidden]
        }
        func layoutState(_ s: [Double]) -> [Double] {
            guard layout == 1 else { return s }
            return (0..<s.count).map { index in
                let b = index / (directions * hidden), d = (index / hidden) % directions, k = index % hidden
                return s[(d * batch + b) * hidden + k]
            }
        }
        return [Cast.fromDoubles(yValues, dtype: dtype, shape: yShape)]
            + states.map { Cast.fromDoubles(layoutState($0), dtype: dtype, shape: stateShape) }
    }

    /// Initial state input `index` as [directions, batch, hidden], zeros when absent.
    func initialState(_ i: [Tensor?], _ index: Int) -> [Double] {
        guard i.count > index, let tensor = i[index] else { return [Double](repeating: 0, count: directions * batch * hidden) }
        let values = tensor.doubles()
        guard layout == 1 else { return values }
        return (0..<values.count).map { position in
            let d = position / (batch * hidden), b = (position / hidden) % batch, k = position % hidden
            return values[(b * directions + d) * hidden + k]
        }
    }
}

func recurrentActivation(_ name: String, alphas: inout [Float], betas: inout [Float], _ c: KernelContext) throws -> (Double) -> Double {
    func take(_ list: inout [Float], _ fallback: Double) -> Double { list.isEmpty ? fallback : Double(list.removeFirst()) }
    switch name.lowercased() {
    case "sigmoid": return { 1 / (1 + Libm.exp(-$0)) }
    case "tanh": return { Libm.tanh($0) }
    case "relu": return { Swift.max(0, $0) }
    case "affine": let a = take(&alphas, 1), b = take(&betas, 0); return { a * $0 + b }
    case "leakyrelu": let a = take(&alphas, 0.01); return { $0 >= 0 ? $0 : a * $0 }
    case "thresholdedrelu": let a = take(&alphas, 1); return { $0 > a ? $0 : 0 }
    case "scaledtanh": let a = take(&alphas, 1), b = take(&betas, 1); return { a * Libm.tanh(b * $0) }
    case "hardsigmoid": let a = take(&alphas, 0.2), b = take(&betas, 0.5); return { Swift.max(0, Swift.min(1, a * $0 + b)) }
    case "elu": let a = take(&alphas, 1); return { $0 >= 0 ? $0 : a * (Libm.exp($0) - 1) }
    case "softsign": return { $0 / (1 + Swift.abs($0)) }
    case "softplus": return { Libm.log(1 + Libm.exp($0)) }
    default: throw c.invalid("unknown activation `\(name)`")
    }
}

/// `W·x + R·h + biases` for gate `g` of direction `d`, one hidden unit `k`.
struct GateWeights {
    let w: [Double], r: [Double], wb: [Double], rb: [Double]
    let gates: Int, hidden: Int, inputSize: Int

    init(_ c: KernelContext, _ i: [Tensor?], gates: Int, hidden: Int, inputSize: Int, directions: Int) throws {
        w = try c.input(i, 1).doubles()
        r = try c.input(i, 2).doubles()
        let bias = i.count > 3 ? i[3]?.doubles() : nil
        let size = gates * hidden
        wb = bias.map { b in (0..<directions).flatMap { d in b[(d * 2 * size)..<(d * 2 * size + size)] } } ?? [Double](repeating: 0, count: directions * size)
        rb =
            bias.map { b in (0..<directions).flatMap { d in b[(d * 2 * size + size)..<((d + 1) * 2 * size)] } }
            ?? [Double](repeating: 0, count: directions * size)
        self.gates = gates
        self.hidden = hidden
        self.inputSize = inputSize
    }

    func input(_ d: Int, _ g: Int, _ k: Int, _ x: ArraySlice<Double>) -> Double {
        let row = (d * gates + g) * hidden + k
        var sum = wb[row]
        let base = row * inputSize
        for (j, value) in x.enumerated() { sum += w[base + j] * value }
        return sum
    }

    func recurrent(_ d: Int, _ g: Int, _ k: Int, _ h: [Double]) -> Double {
        let row = (d * gates + g) * hidden + k
        var sum = rb[row]
        let base = row * hidden
        for j in 0..<hidden { sum += r[base + j] * h[j] }
        return sum
    }
}

extension KernelRegistry {
    static func registerRecurrent(_ r: inout KernelRegistry) {
        r.register("RNN", rnnKernel)
        r.register("GRU", gruKernel)
        r.register("LSTM", lstmKernel)
    }

    static func rnnKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        var frame = try RecurrentFrame(c, i, defaults: ["Tanh"])
        frame.directionIsReverse = c.attributes.string("direction", default: "forward") == "reverse"
        let weights = try GateWeights(c, i, gates: 1, hidden: frame.hidden, inputSize: frame.inputSize, directions: frame.directions)
        let (y, states) = frame.run(stateCount: 1, initial: [frame.initialState(i, 5)]) { d, t, b, state in
            let x = frame.x[((t * frame.batch) + b) * frame.inputSize..<((t * frame.batch) + b + 1) * frame.inputSize]
            let previous = state[0]
            for k in 0..<frame.hidden {
                state[0][k] = frame.activations[d](frame.clipped(weights.input(d, 0, k, x) + weights.recurrent(d, 0, k, previous)))
            }
        }
        return frame.outputs(y, states, dtype: try c.input(i, 0).dtype)
    }

    static func gruKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        var frame = try RecurrentFrame(c, i, defaults: ["Sigmoid", "Tanh"])
        frame.directionIsReverse = c.attributes.string("direction", default: "forward") == "reverse"
        let weights = try GateWeights(c, i, gates: 3, hidden: frame.hidden, inputSize: frame.inputSize, directions: frame.directions)
        let linearBeforeReset = c.attributes.int("linear_before_reset", default: 0) == 1
        let (y, states) = frame.run(stateCount: 1, initial: [frame.initialState(i, 5)]) { d, t, b, state in
            let f = frame.activations[2 * d], g = frame.activations[2 * d + 1]
            let x = frame.x[((t * frame.batch) + b) * frame.inputSize..<((t * frame.batch) + b + 1) * frame.inputSize]
            let h = state[0]
            let z = (0..<frame.hidden).map { f(frame.clipped(weights.input(d, 0, $0, x) + weights.recurrent(d, 0, $0, h))) }
            let reset = (0..<frame.hidden).map { f(frame.clipped(weights.input(d, 1, $0, x) + weights.recurrent(d, 1, $0, h))) }
            let gated = zip(reset, h).map(*)
            for k in 0..<frame.hidden {
                let candidate =
                    linearBeforeReset
                    ? weights.input(d, 2, k, x) + reset[k] * weights.recurrent(d, 2, k, h)
                    : weights.input(d, 2, k, x) + weights.recurrent(d, 2, k, gated)
                let n = g(frame.clipped(candidate))
                state[0][k] = (1 - z[k]) * n + z[k] * h[k]
            }
        }
        return frame.outputs(y, states, dtype: try c.input(i, 0).dtype)
    }

    static func lstmKernel(_ c: KernelContext, _ i: [Tensor?]) throws -> [Tensor] {
        var frame = try RecurrentFrame(c, i, defaults: ["Sigmoid", "Tanh", "Tanh"])
        frame.directionIsReverse = c.attributes.string("direction", default: "forward") == "reverse"
        let weights = try GateWeights(c, i, gates: 4, hidden: frame.hidden, inputSize: frame.inputSize, directions: frame.directions)
        let peepholes = i.count > 7 ? i[7]?.doubles() : nil
        let inputForget = c.attributes.int("input_forget", default: 0) == 1
        let (y, states) = frame.run(stateCount: 2, initial: [frame.initialState(i, 5), frame.initialState(i, 6)]) { d, t, b, state in
            let f = frame.activations[3 * d], g = frame.activations[3 * d + 1], h = frame.activations[3 * d + 2]
            let x = frame.x[((t * frame.batch) + b) * frame.inputSize..<((t * frame.batch) + b + 1) * frame.inputSize]
            let previousH = state[0], previousC = state[1]
            let hidden = frame.hidden
            func peephole(_ gate: Int, _ k: Int) -> Double { peepholes.map { $0[d * 3 * hidden + gate * hidden + k] } ?? 0 }
            for k in 0..<hidden {
                // Gate order in W, R and B: input, output, forget, cell.
                let input = f(frame.clipped(weights.input(d, 0, k, x) + weights.recurrent(d, 0, k, previousH) + peephole(0, k) * previousC[k]))
                var forget = f(frame.clipped(weights.input(d, 2, k, x) + weights.recurrent(d, 2, k, previousH) + peephole(2, k) * previousC[k]))
                if inputForget { forget = 1 - input }
                let cell = g(frame.clipped(weights.input(d, 3, k, x) + weights.recurrent(d, 3, k, previousH)))
                let newC = forget * previousC[k] + input * cell
                let output = f(frame.clipped(weights.input(d, 1, k, x) + weights.recurrent(d, 1, k, previousH) + peephole(1, k) * newC))
                state[1][k] = newC
                state[0][k] = output * h(newC)
            }
        }
        return frame.outputs(y, states, dtype: try c.input(i, 0).dtype)
    }
}
