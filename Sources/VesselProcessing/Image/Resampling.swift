import RealModule

/// Resizing as Pillow's `Image.resize` does it, so a model sees the pixels it was trained on
/// when its training pipeline used Pillow (torchvision's `Resize` on PIL images does):
///
/// - bilinear, bicubic (a = −0.5) and Lanczos (a = 3) are separable convolutions whose support
///   widens with the downscale factor (antialiasing); horizontal pass first, then vertical;
///   weights normalized and rounded to 22-bit fixed point; each pass rounds to 8 bits
///   (Pillow's `ImagingResample`, 8-bit path).
/// - nearest takes the source pixel under each output pixel's centre, `floor((x + 0.5) · scale)`
///   accumulated step by step as Pillow's affine transform with NEAREST does.
///
/// Pass order is Pillow 12's (and earlier): always horizontal, then vertical. Pillow 13 runs the
/// vertical pass first for some downscales that shrink the height much more than the width,
/// which can move those pixels by a few levels.
enum Resampling: String, Sendable, CaseIterable {
    case nearest, bilinear, bicubic, lanczos

    var support: Double {
        switch self {
        case .nearest: 0
        case .bilinear: 1
        case .bicubic: 2
        case .lanczos: 3
        }
    }

    func weight(_ x: Double) -> Double {
        switch self {
        case .nearest: return 0
        case .bilinear:
            let x = abs(x)
            return x < 1 ? 1 - x : 0
        case .bicubic:
            let a = -0.5, x = abs(x)
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        case .lanczos:
            guard x > -3, x < 3 else { return 0 }
            func sinc(_ x: Double) -> Double { x == 0 ? 1 : Double.sin(x * .pi) / (x * .pi) }
            return sinc(x) * sinc(x / 3)
        }
    }

    static let precisionBits = 32 - 8 - 2

    /// `image` resized to `width` × `height`.
    func resize(_ image: Pixels, width: Int, height: Int) -> Pixels {
        if image.width == width, image.height == height { return image }
        if self == .nearest { return nearest(image, width: width, height: height) }
        var current = image
        if width != image.width { current = horizontalPass(current, outSize: width) }
        if height != image.height { current = verticalPass(current, outSize: height) }
        return current
    }

    private func nearest(_ image: Pixels, width: Int, height: Int) -> Pixels {
        let (sx, sy) = (Double(image.width) / Double(width), Double(image.height) / Double(height))
        let c = image.channels
        var out = [UInt8](repeating: 0, count: width * height * c)
        // Positions accumulate as Pillow's affine scan does (start at half a step, add a step):
        // the sum, not (x + 0.5)·scale, decides which pixel a boundary case takes.
        func sources(_ count: Int, _ step: Double, _ limit: Int) -> [Int] {
            var position = 0.5 * step
            return (0..<count).map { _ in
                defer { position += step }
                return min(limit - 1, max(0, Int(position)))
            }
        }
        let columns = sources(width, sx, image.width), rows = sources(height, sy, image.height)
        for y in 0..<height {
            let source = rows[y]
            for x in 0..<width {
                for channel in 0..<c { out[(y * width + x) * c + channel] = image.data[(source * image.width + columns[x]) * c + channel] }
            }
        }
        return Pixels(width: width, height: height, channels: c, data: out)
    }

    /// Each output index's first source index and tap count, and its fixed-point weights at
    /// `index * stride` of one flat array (an array per index would be retained per pixel).
    private func coefficients(inSize: Int, outSize: Int) -> (first: [Int], count: [Int], weights: [Int32], stride: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = self.support * filterScale
        let stride = Int(support.rounded(.up)) * 2 + 1
        var first = [Int](repeating: 0, count: outSize), count = [Int](repeating: 0, count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * stride)
        let inverse = 1 / filterScale
        let one = Double(1 << Self.precisionBits)
        for index in 0..<outSize {
            let center = (Double(index) + 0.5) * scale
            // C's (int) truncates toward zero, as Pillow's does here.
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), inSize)
            var kernel = (low..<high).map { weight((Double($0) - center + 0.5) * inverse) }
            let total = kernel.reduce(0, +)
            if total != 0 { kernel = kernel.map { $0 / total } }
            for (k, value) in kernel.enumerated() {
                weights[index * stride + k] = Int32(value < 0 ? (-0.5 + value * one) : (0.5 + value * one))
            }
            (first[index], count[index]) = (low, high - low)
        }
        return (first, count, weights, stride)
    }

    /// The horizontal pass in 32-bit fixed point, as Pillow's (the sums fit: the weights add up
    /// to 2^22).
    private func horizontalPass(_ image: Pixels, outSize width: Int) -> Pixels {
        let (firsts, counts, weights, stride) = coefficients(inSize: image.width, outSize: width)
        let (height, c) = (image.height, image.channels)
        var out = [UInt8](repeating: 0, count: width * height * c)
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        let shift = Int32(Self.precisionBits)
        @inline(__always) func clip(_ sum: Int32) -> UInt8 { UInt8(clamping: sum >> shift) }
        // Raw pointers for the pixels and weights: bounds were set by `coefficients`, and array
        // checks per tap were a third of this pass's time.
        image.data.withUnsafeBufferPointer { sourceBuffer in
            out.withUnsafeMutableBufferPointer { targetBuffer in
                weights.withUnsafeBufferPointer { w in
                    let (source, target) = (sourceBuffer.baseAddress!, targetBuffer.baseAddress!)
                    let rowLength = image.width * c
                    for y in 0..<height {
                        for x in 0..<width {
                            let (first, count) = (firsts[x], counts[x])
                            let kernel = w.baseAddress! + x * stride
                            let at = (y * width + x) * c
                            if c == 3 {
                                var pixel = source + y * rowLength + first * 3
                                var (r, g, b) = (half, half, half)
                                for k in 0..<count {
                                    let weight = kernel[k]
                                    r &+= Int32(pixel[0]) &* weight
                                    g &+= Int32(pixel[1]) &* weight
                                    b &+= Int32(pixel[2]) &* weight
                                    pixel += 3
                                }
                                (target[at], target[at + 1], target[at + 2]) = (clip(r), clip(g), clip(b))
                            } else {
                                let base = y * rowLength + first * c
                                for channel in 0..<c {
                                    var sum = half
                                    for k in 0..<count { sum &+= Int32(source[base + k * c + channel]) &* kernel[k] }
                                    target[at + channel] = clip(sum)
                                }
                            }
                        }
                    }
                }
            }
        }
        return Pixels(width: width, height: height, channels: c, data: out)
    }

    /// The vertical pass a row at a time: each output row is the weighted sum of its source
    /// rows, accumulated across the whole row (contiguous, vectorizable), then clipped.
    private func verticalPass(_ image: Pixels, outSize: Int) -> Pixels {
        let (firsts, counts, weights, stride) = coefficients(inSize: image.height, outSize: outSize)
        let rowLength = image.width * image.channels
        var out = [UInt8](repeating: 0, count: rowLength * outSize)
        var sums = [Int32](repeating: 0, count: rowLength)
        let half = Int32(1) << Int32(Self.precisionBits - 1)
        let shift = Int32(Self.precisionBits)
        image.data.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                sums.withUnsafeMutableBufferPointer { sum in
                    for y in 0..<outSize {
                        for i in 0..<rowLength { sum[i] = half }
                        for k in 0..<counts[y] {
                            let weight = weights[y * stride + k]
                            let row = source.baseAddress! + (firsts[y] + k) * rowLength
                            for i in 0..<rowLength { sum[i] &+= Int32(row[i]) &* weight }
                        }
                        let target = target.baseAddress! + y * rowLength
                        for i in 0..<rowLength { target[i] = UInt8(clamping: sum[i] >> shift) }
                    }
                }
            }
        }
        return Pixels(width: image.width, height: outSize, channels: image.channels, data: out)
    }
}
