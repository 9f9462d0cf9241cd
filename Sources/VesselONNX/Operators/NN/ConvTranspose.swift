#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import VesselTensor

// ConvTranspose: the gradient of Conv, scattered into its output (registered with Conv).

func convolutionTranspose(_ x: Tensor, _ w: Tensor, _ bias: Tensor?, _ c: KernelContext) throws -> Tensor {
    let a = c.attributes
    let group = a.int("group", default: 1)
    guard x.rank >= 3, w.rank == x.rank else { throw c.invalid("ConvTranspose needs X and W of the same rank ≥ 3, got \(x.shape) and \(w.shape)") }
    let (batch, channels) = (x.shape[0], x.shape[1])
    guard group >= 1, group <= 1 << 31, w.shape[0] == channels, channels % group == 0 else {
        throw c.invalid("X has \(channels) channels and W \(w.shape[0]) input channels; group \(group) must be positive and divide them")
    }
    let outPerGroup = w.shape[1], filters = outPerGroup * group
    let n = x.rank - 2
    let input = Array(x.shape[2...])
    let kernel = a.ints("kernel_shape") ?? Array(w.shape[2...])
    let strides = a.ints("strides") ?? [Int](repeating: 1, count: n)
    let dilations = a.ints("dilations") ?? [Int](repeating: 1, count: n)
    let outputPadding = a.ints("output_padding") ?? [Int](repeating: 0, count: n)
    var pads = a.ints("pads") ?? [Int](repeating: 0, count: 2 * n)
    guard kernel == Array(w.shape[2...]) else { throw c.invalid("kernel_shape \(kernel) differs from the weights' shape \(w.shape)") }
    try WindowGeometry.check(input: input, kernel: kernel, strides: strides, dilations: dilations, pads: pads, outputPadding: outputPadding, context: c)
    let limit = 1 << 31
    if let bias, bias.shape != [filters] { throw c.invalid("B has shape \(bias.shape); it must be [\(filters)]") }
    if let requested = a.ints("output_shape"), requested.count < n || requested.suffix(n).contains(where: { $0 < 0 || $0 > limit }) {
        throw c.invalid("output_shape \(requested) must give \(n) non-negative sizes")
    }
    var output: [Int] = []
    let autoPad = a.string("auto_pad", default: "NOTSET")
    if let requested = a.ints("output_shape") {
        let requestedSpatial = Array(requested.suffix(n))
        for d in 0..<n {
            let total = strides[d] * (input[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1 - requestedSpatial[d]
            // Floor division, as the spec's reference: a negative total pads the end negatively,
            // which makes the output longer.
            let half = Int((Double(total) / 2).rounded(.down))
            if autoPad == "SAME_UPPER" { pads[d] = half; pads[d + n] = total - half } else { pads[d] = total - half; pads[d + n] = half }
        }
        output = requestedSpatial
    } else {
        for d in 0..<n {
            if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
                let target = input[d] * strides[d]
                let total = Swift.max(0, strides[d] * (input[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1 - target)
                let half = total / 2
                if autoPad == "SAME_UPPER" { pads[d] = half; pads[d + n] = total - half } else { pads[d] = total - half; pads[d + n] = half }
            }
            output.append(strides[d] * (input[d] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1 - pads[d] - pads[d + n])
        }
    }
    guard output.allSatisfy({ $0 >= 0 }) else { throw c.invalid("the output would have negative size \(output)") }
    try c.checkAllocation(.float64, [batch, filters] + output)
    let xs = x.doubles(), ws = w.doubles()
    let inputSpatial = input.reduce(1, *), outputSpatial = output.reduce(1, *), kernelSize = kernel.reduce(1, *)
    let inputStrides = Tensor.strides(of: input), outputStrides = Tensor.strides(of: output), kernelStrides = Tensor.strides(of: kernel)
    var result = [Double](repeating: 0, count: batch * filters * outputSpatial)
    let channelsPerGroup = channels / group
    for b in 0..<batch {
        for ci in 0..<channels {
            let gi = ci / channelsPerGroup
            for s in 0..<inputSpatial {
                let value = xs[(b * channels + ci) * inputSpatial + s]
                if value == 0 { continue }
                for k in 0..<kernelSize {
                    var offset = 0, inside = true
                    for d in 0..<n {
                        let position = ((s / inputStrides[d]) % input[d]) * strides[d] + ((k / kernelStrides[d]) % kernel[d]) * dilations[d] - pads[d]
                        if position < 0 || position >= output[d] { inside = false; break }
                        offset += position * outputStrides[d]
                    }
                    guard inside else { continue }
                    for o in 0..<outPerGroup {
                        let weight = ws[(ci * outPerGroup + o) * kernelSize + k]
                        result[(b * filters + gi * outPerGroup + o) * outputSpatial + offset] += value * weight
                    }
                }
            }
        }
    }
    if let bias {
        let values = bias.doubles()
        for index in result.indices { result[index] += values[(index / outputSpatial) % filters] }
    }
    return Cast.fromDoubles(result, dtype: x.dtype, shape: [batch, filters] + output)
}
