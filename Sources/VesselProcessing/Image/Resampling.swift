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
        if width != image.width { current = pass(current, outSize: width, horizontal: true) }
        if height != image.height { current = pass(current, outSize: height, horizontal: false) }
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

    /// Each output index's first source index, count, and fixed-point weights.
    private func coefficients(inSize: Int, outSize: Int) -> (bounds: [(Int, Int)], weights: [[Int32]]) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = self.support * filterScale
        var bounds: [(Int, Int)] = []
        var weights: [[Int32]] = []
        bounds.reserveCapacity(outSize)
        weights.reserveCapacity(outSize)
        for index in 0..<outSize {
            let center = (Double(index) + 0.5) * scale
            // C's (int) truncates toward zero, as Pillow's does here.
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), inSize)
            let inverse = 1 / filterScale
            var kernel = (low..<high).map { weight((Double($0) - center + 0.5) * inverse) }
            let total = kernel.reduce(0, +)
            if total != 0 { kernel = kernel.map { $0 / total } }
            let one = Double(1 << Self.precisionBits)
            weights.append(kernel.map { Int32($0 < 0 ? (-0.5 + $0 * one) : (0.5 + $0 * one)) })
            bounds.append((low, high - low))
        }
        return (bounds, weights)
    }

    private func pass(_ image: Pixels, outSize: Int, horizontal: Bool) -> Pixels {
        let inSize = horizontal ? image.width : image.height
        let (bounds, weights) = coefficients(inSize: inSize, outSize: outSize)
        let (width, height) = horizontal ? (outSize, image.height) : (image.width, outSize)
        let c = image.channels
        var out = [UInt8](repeating: 0, count: width * height * c)
        let half = Int64(1) << (Self.precisionBits - 1)
        image.data.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0..<height {
                    for x in 0..<width {
                        let (first, count) = bounds[horizontal ? x : y]
                        let kernel = weights[horizontal ? x : y]
                        for channel in 0..<c {
                            var sum = half
                            for k in 0..<count {
                                let at = horizontal ? (y * image.width + first + k) : ((first + k) * image.width + x)
                                sum += Int64(source[at * c + channel]) * Int64(kernel[k])
                            }
                            target[(y * width + x) * c + channel] = UInt8(clamping: sum >> Int64(Self.precisionBits))
                        }
                    }
                }
            }
        }
        return Pixels(width: width, height: height, channels: c, data: out)
    }
}
