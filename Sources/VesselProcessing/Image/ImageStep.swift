import VesselManifest
import VesselTensor

/// The `image` preprocess step: encoded images (one per element of a BYTES input) to the
/// float tensor a vision model takes — decode, EXIF orientation, colour, resize (as Pillow),
/// crop or letterbox (as torchvision and Ultralytics), scale, layout; a batch of images stacked.
struct ImageSpec: Sendable {
    enum Fit: String, Sendable, CaseIterable {
        /// Resize to `size` exactly (aspect ratio not kept).
        case stretch
        /// torchvision's `Resize(shorter_side)` then `CenterCrop(size)`.
        case centerCrop = "center_crop"
        /// Ultralytics' `LetterBox`: fit inside `size` keeping the aspect ratio, pad the rest.
        case letterbox
    }
    enum Color: String, Sendable { case rgb, bgr, gray }

    static let defaultMaxPixels = 40_000_000

    var height: Int
    var width: Int
    var channelsFirst: Bool
    var color: Color
    var scale: Double
    var fit: Fit
    var shorterSide: Int
    var filter: Resampling
    var pad: UInt8
    var maxPixels = defaultMaxPixels

    var channels: Int { color == .gray ? 1 : 3 }

    init(_ parameters: [String: Value]) throws(ImageProblem) {
        guard case .array(let size)? = parameters["size"], size.count == 2, case .int(let h) = size[0], case .int(let w) = size[1],
            (1...16384).contains(h), (1...16384).contains(w)
        else {
            throw ImageProblem("needs `size: [height, width]`, each from 1 to 16384")
        }
        (height, width) = (h, w)
        func text(_ key: String, _ fallback: String) -> String { if case .string(let value)? = parameters[key] { value } else { fallback } }
        switch text("layout", "NCHW") {
        case "NCHW": channelsFirst = true
        case "NHWC": channelsFirst = false
        case let other: throw ImageProblem("`layout` must be NCHW or NHWC, not \(other)")
        }
        guard let color = Color(rawValue: text("color", "rgb")) else { throw ImageProblem("`color` must be rgb, bgr or gray") }
        self.color = color
        switch parameters["scale"] {
        case .double(let value)?: scale = value
        case .int(let value)?: scale = Double(value)
        default: scale = 1.0 / 255.0
        }
        guard scale.isFinite else { throw ImageProblem("`scale` must be finite") }
        guard let fit = Fit(rawValue: text("resize", "stretch")) else {
            throw ImageProblem("`resize` must be one of \(Fit.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.fit = fit
        guard let filter = Resampling(rawValue: text("filter", "bilinear")) else {
            throw ImageProblem("`filter` must be one of \(Resampling.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self.filter = filter
        if case .int(let side)? = parameters["shorter_side"] {
            guard fit == .centerCrop else { throw ImageProblem("`shorter_side` goes with `resize: center_crop`") }
            guard (1...16384).contains(side) else { throw ImageProblem("`shorter_side` must be from 1 to 16384") }
            shorterSide = side
        } else {
            shorterSide = min(h, w)
        }
        if case .int(let value)? = parameters["pad"] {
            guard fit == .letterbox else { throw ImageProblem("`pad` goes with `resize: letterbox`") }
            guard (0...255).contains(value) else { throw ImageProblem("`pad` must be from 0 to 255") }
            pad = UInt8(value)
        } else {
            pad = 114
        }
    }

    /// The model-side shape this step writes for `count` images.
    func shape(count: Int) -> [Int] {
        channelsFirst ? [count, channels, height, width] : [count, height, width, channels]
    }

    /// Every element of a BYTES tensor as one image of the batch; `index` names a bad one.
    func run(_ elements: [String], name: String) throws(ImageProblem) -> Tensor {
        var images: [Pixels] = []
        images.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            do throws(ImageProblem) { images.append(try prepare(BytesElement.bytes(element))) } catch {
                throw ImageProblem("input `\(name)`\(elements.count > 1 ? " element \(index)" : "") \(error.description)")
            }
        }
        let plane = height * width
        let (channels, channelsFirst, bgr, scale) = (self.channels, self.channelsFirst, color == .bgr, Float(self.scale))
        let out = Tensor(uninitialized: .float32, shape: shape(count: images.count))
        out.withUnsafeMutableBufferPointer(as: Float.self) { target in
            for (index, pixels) in images.enumerated() {
                let base = index * plane * channels
                for position in 0..<plane {
                    for channel in 0..<channels {
                        let value = Float(pixels.data[position * channels + (bgr ? 2 - channel : channel)]) * scale
                        target[base + (channelsFirst ? channel * plane + position : position * channels + channel)] = value
                    }
                }
            }
        }
        return out
    }

    /// Decoded, oriented, coloured and fitted to `size`: 8-bit pixels.
    func prepare(_ bytes: [UInt8]) throws(ImageProblem) -> Pixels {
        var image = try ImageDecoding.decodeRGB(bytes, maxPixels: maxPixels)
        if color == .gray { image = Self.gray(image) }
        switch fit {
        case .stretch:
            return filter.resize(image, width: width, height: height)
        case .centerCrop:
            // torchvision: the shorter side to `shorter_side`, the longer truncated in proportion.
            let (w, h) = (image.width, image.height)
            let long = max(w, h), short = min(w, h)
            let newLong = Int(Double(shorterSide) * Double(long) / Double(short))
            let (newW, newH) = w <= h ? (shorterSide, newLong) : (newLong, shorterSide)
            image = filter.resize(image, width: max(1, newW), height: max(1, newH))
            // CenterCrop: offsets rounded half to even, as Python's round; zero padding when
            // the crop is larger than the image.
            let left = width > image.width ? -((width - image.width) / 2) : Int((Double(image.width - width) / 2).rounded(.toNearestOrEven))
            let top = height > image.height ? -((height - image.height) / 2) : Int((Double(image.height - height) / 2).rounded(.toNearestOrEven))
            return Self.crop(image, left: left, top: top, width: width, height: height, fill: 0)
        case .letterbox:
            let (w, h) = (image.width, image.height)
            let ratio = min(Double(height) / Double(h), Double(width) / Double(w))
            let newW = max(1, Int((Double(w) * ratio).rounded(.toNearestOrEven)))
            let newH = max(1, Int((Double(h) * ratio).rounded(.toNearestOrEven)))
            image = filter.resize(image, width: newW, height: newH)
            let left = Int((Double(width - newW) / 2 - 0.1).rounded(.toNearestOrEven))
            let top = Int((Double(height - newH) / 2 - 0.1).rounded(.toNearestOrEven))
            return Self.crop(image, left: -left, top: -top, width: width, height: height, fill: pad)
        }
    }

    /// Pillow's `convert("L")`: ITU-R 601-2 luma in 16-bit fixed point.
    static func gray(_ image: Pixels) -> Pixels {
        var out = [UInt8](repeating: 0, count: image.width * image.height)
        for k in 0..<out.count {
            let (r, g, b) = (UInt32(image.data[3 * k]), UInt32(image.data[3 * k + 1]), UInt32(image.data[3 * k + 2]))
            out[k] = UInt8((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16)
        }
        return Pixels(width: image.width, height: image.height, channels: 1, data: out)
    }

    /// The `width` × `height` window at (`left`, `top`); outside the image, `fill`.
    static func crop(_ image: Pixels, left: Int, top: Int, width: Int, height: Int, fill: UInt8) -> Pixels {
        let c = image.channels
        var out = [UInt8](repeating: fill, count: width * height * c)
        for y in 0..<height {
            let sy = top + y
            guard sy >= 0, sy < image.height else { continue }
            for x in 0..<width {
                let sx = left + x
                guard sx >= 0, sx < image.width else { continue }
                for channel in 0..<c { out[(y * width + x) * c + channel] = image.data[(sy * image.width + sx) * c + channel] }
            }
        }
        return Pixels(width: width, height: height, channels: c, data: out)
    }
}
