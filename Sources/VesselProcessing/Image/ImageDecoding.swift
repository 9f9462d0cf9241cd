import CPNG
import CTurboJPEG
import CWebP

/// 8-bit pixels, row-major, interleaved: `channels` per pixel (3: RGB, 1: grey).
struct Pixels: Sendable, Equatable {
    var width: Int
    var height: Int
    var channels: Int
    var data: [UInt8]
}

/// Why an image could not be read: the caller names the input and element.
struct ImageProblem: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// JPEG (libjpeg-turbo's TurboJPEG API: accurate integer IDCT and fancy upsampling, libjpeg's
/// defaults, as Pillow decodes), PNG (libpng's simplified API) and WebP (libwebp) to 8-bit RGB,
/// the size checked from the header before any pixel is decoded.
enum ImageDecoding {
    static func decodeRGB(_ bytes: [UInt8], maxPixels: Int) throws(ImageProblem) -> Pixels {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            var pixels = try jpeg(bytes, maxPixels: maxPixels)
            if let orientation = ExifOrientation.read(jpeg: bytes), orientation != 1 { pixels = ExifOrientation.apply(orientation, to: pixels) }
            return pixels
        }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return try png(bytes, maxPixels: maxPixels) }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            return try webp(bytes, maxPixels: maxPixels)
        }
        if bytes.isEmpty { throw ImageProblem("is empty, not an image") }
        let head = bytes.prefix(8).map { String($0, radix: 16) }.joined(separator: " ")
        throw ImageProblem("is not a JPEG, PNG or WebP image (it starts with bytes \(head))")
    }

    private static func check(width: Int, height: Int, maxPixels: Int) throws(ImageProblem) {
        guard width > 0, height > 0 else { throw ImageProblem("has no pixels (\(width)×\(height))") }
        guard width.multipliedReportingOverflow(by: height).partialValue <= maxPixels, width <= 1 << 20, height <= 1 << 20 else {
            throw ImageProblem("is \(width)×\(height) pixels, over serving.max_image_pixels (\(maxPixels))")
        }
    }

    private static func jpeg(_ bytes: [UInt8], maxPixels: Int) throws(ImageProblem) -> Pixels {
        guard let handle = tjInitDecompress() else { throw ImageProblem("could not start the JPEG decoder") }
        defer { tjDestroy(handle) }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer {
            tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &width, &height, &subsampling, &colorspace)
        }
        guard header == 0 else { throw ImageProblem("is not a readable JPEG: \(String(cString: tjGetErrorStr2(handle)))") }
        try check(width: Int(width), height: Int(height), maxPixels: maxPixels)
        guard colorspace != Int32(TJCS_CMYK.rawValue), colorspace != Int32(TJCS_YCCK.rawValue) else {
            throw ImageProblem("is a CMYK JPEG; send RGB or greyscale")
        }
        var data = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let status = bytes.withUnsafeBufferPointer { source in
            data.withUnsafeMutableBufferPointer { target in
                tjDecompress2(handle, source.baseAddress, UInt(source.count), target.baseAddress, width, 0, height, Int32(TJPF_RGB.rawValue), 0)
            }
        }
        // A warning (a truncated file decodes with grey rows) is an error here: the answer
        // would be for a different picture than the client meant.
        guard status == 0 else { throw ImageProblem("is not a complete JPEG: \(String(cString: tjGetErrorStr2(handle)))") }
        return Pixels(width: Int(width), height: Int(height), channels: 3, data: data)
    }

    private static func png(_ bytes: [UInt8], maxPixels: Int) throws(ImageProblem) -> Pixels {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = bytes.withUnsafeBufferPointer { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        defer { png_image_free(&image) }
        guard begun != 0 else { throw ImageProblem("is not a readable PNG: \(message(image))") }
        try check(width: Int(image.width), height: Int(image.height), maxPixels: maxPixels)
        // RGBA, then the alpha dropped, as Pillow's convert("RGB") does (no compositing).
        image.format = UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
        let (width, height) = (Int(image.width), Int(image.height))
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let finished = rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        guard finished != 0 else { throw ImageProblem("is not a complete PNG: \(message(image))") }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for k in 0..<(width * height) {
            rgb[3 * k] = rgba[4 * k]
            rgb[3 * k + 1] = rgba[4 * k + 1]
            rgb[3 * k + 2] = rgba[4 * k + 2]
        }
        return Pixels(width: width, height: height, channels: 3, data: rgb)
    }

    /// WebP (libwebp, lossy and lossless; alpha dropped as for PNG). Animated files are refused.
    private static func webp(_ bytes: [UInt8], maxPixels: Int) throws(ImageProblem) -> Pixels {
        var width: Int32 = 0, height: Int32 = 0
        guard bytes.withUnsafeBufferPointer({ WebPGetInfo($0.baseAddress, $0.count, &width, &height) }) != 0 else {
            throw ImageProblem("is not a readable WebP image (an animated WebP is not taken)")
        }
        try check(width: Int(width), height: Int(height), maxPixels: maxPixels)
        var rgb = [UInt8](repeating: 0, count: Int(width) * Int(height) * 3)
        let decoded = bytes.withUnsafeBufferPointer { source in
            rgb.withUnsafeMutableBufferPointer { target in
                WebPDecodeRGBInto(source.baseAddress, source.count, target.baseAddress, target.count, width * 3)
            }
        }
        guard decoded != nil else { throw ImageProblem("is not a complete WebP image") }
        return Pixels(width: Int(width), height: Int(height), channels: 3, data: rgb)
    }

    private static func message(_ image: png_image) -> String {
        var copy = image.message
        return withUnsafeBytes(of: &copy) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// A JPEG's EXIF orientation (tag 0x0112 of IFD0), applied as Pillow's `ImageOps.exif_transpose`
/// does, so a photo taken sideways is classified upright.
enum ExifOrientation {
    static func read(jpeg bytes: [UInt8]) -> Int? {
        var k = 2
        while k + 4 <= bytes.count, bytes[k] == 0xFF {
            let marker = bytes[k + 1]
            if marker == 0xDA || marker == 0xD9 { return nil }
            let length = Int(bytes[k + 2]) << 8 | Int(bytes[k + 3])
            guard length >= 2, k + 2 + length <= bytes.count else { return nil }
            let segment = bytes[(k + 4)..<(k + 2 + length)]
            if marker == 0xE1, segment.starts(with: Array("Exif\0\0".utf8)) {
                return orientation(tiff: Array(segment.dropFirst(6)))
            }
            k += 2 + length
        }
        return nil
    }

    private static func orientation(tiff: [UInt8]) -> Int? {
        guard tiff.count >= 8 else { return nil }
        let little = tiff[0] == 0x49 && tiff[1] == 0x49
        guard little || (tiff[0] == 0x4D && tiff[1] == 0x4D) else { return nil }
        func u16(_ at: Int) -> Int? {
            guard at >= 0, at + 2 <= tiff.count else { return nil }
            return little ? Int(tiff[at]) | Int(tiff[at + 1]) << 8 : Int(tiff[at]) << 8 | Int(tiff[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let a = u16(at), let b = u16(at + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard let ifd = u32(4), let entries = u16(ifd) else { return nil }
        for entry in 0..<min(entries, 512) {
            let at = ifd + 2 + entry * 12
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112, let type = u16(at + 2), type == 3, let value = u16(at + 8), (1...8).contains(value) { return value }
        }
        return nil
    }

    /// 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
    /// 8 rotate 90° counter-clockwise.
    static func apply(_ orientation: Int, to image: Pixels) -> Pixels {
        let (w, h, c) = (image.width, image.height, image.channels)
        let swaps = orientation >= 5
        let (outW, outH) = swaps ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: image.data.count)
        for y in 0..<outH {
            for x in 0..<outW {
                // The source pixel of output (x, y).
                let (sx, sy): (Int, Int) =
                    switch orientation {
                    case 2: (w - 1 - x, y)
                    case 3: (w - 1 - x, h - 1 - y)
                    case 4: (x, h - 1 - y)
                    case 5: (y, x)
                    case 6: (y, h - 1 - x)
                    case 7: (w - 1 - y, h - 1 - x)
                    case 8: (w - 1 - y, x)
                    default: (x, y)
                    }
                for channel in 0..<c { out[(y * outW + x) * c + channel] = image.data[(sy * w + sx) * c + channel] }
            }
        }
        return Pixels(width: outW, height: outH, channels: c, data: out)
    }
}
