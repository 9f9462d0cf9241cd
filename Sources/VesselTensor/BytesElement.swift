/// How a BYTES element that is not text — an encoded image, any binary payload — travels in a
/// string tensor: as a `data:` URI with base64 (RFC 2397), the form Cog and browsers already
/// use. Text stays text. Every entry that turns wire bytes into tensor elements (the OIP codec's
/// binary BYTES and `content_type: base64`, `vessel predict -i name=@file`) goes through
/// ``string(_:)``, and every consumer of bytes (the `image` step) through ``bytes(_:)``.
public enum BytesElement {
    /// The element for raw bytes: their text when they are valid UTF-8, else a data URI.
    public static func string(_ bytes: some Collection<UInt8>) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return dataURI(bytes)
    }

    /// `data:application/octet-stream;base64,…` for any bytes.
    public static func dataURI(_ bytes: some Collection<UInt8>, mediaType: String = "application/octet-stream") -> String {
        dataURI(base64: Base64.encode(bytes), mediaType: mediaType)
    }

    /// The data URI around base64 text already in hand (valid base64: the caller decoded it).
    public static func dataURI(base64 text: String, mediaType: String = "application/octet-stream") -> String {
        "data:\(mediaType);base64," + text
    }

    /// Whether an element is bytes that were not UTF-8 text (``string(_:)``'s data URI).
    public static func isBinary(_ element: String) -> Bool {
        element.hasPrefix("data:application/octet-stream;base64,")
    }

    /// The bytes an element carries: a data URI's payload (base64 or percent-encoded), bare
    /// base64 (MLServer's `content_type: base64` elements), or else the text's UTF-8.
    public static func bytes(_ element: String) -> [UInt8] {
        let utf8 = Array(element.utf8)
        if utf8.starts(with: Array("data:".utf8)), let comma = utf8.firstIndex(of: UInt8(ascii: ",")) {
            let header = utf8[5..<comma]
            let payload = utf8[(comma + 1)...]
            if header.count >= 7, Array(header.suffix(7)) == Array(";base64".utf8), let decoded = Base64.decode(payload) { return decoded }
            return percentDecoded(payload)
        }
        if utf8.count >= 8, let decoded = Base64.decode(utf8[...]) { return decoded }
        return utf8
    }

    static func percentDecoded(_ text: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var k = text.startIndex
        while k < text.endIndex {
            if text[k] == UInt8(ascii: "%"), k + 2 < text.endIndex, let high = hex(text[k + 1]), let low = hex(text[k + 2]) {
                out.append(high << 4 | low)
                k += 3
            } else {
                out.append(text[k])
                k += 1
            }
        }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Standard base64 (RFC 4648 §4), with padding; decoding also takes the URL-safe alphabet,
/// missing padding and ASCII whitespace, and refuses anything else.
public enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var k = 0
        while k + 2 < input.count {
            let n = UInt32(input[k]) << 16 | UInt32(input[k + 1]) << 8 | UInt32(input[k + 2])
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], alphabet[Int(n & 63)]]
            k += 3
        }
        let rest = input.count - k
        if rest == 1 {
            let n = UInt32(input[k]) << 16
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], UInt8(ascii: "="), UInt8(ascii: "=")]
        } else if rest == 2 {
            let n = UInt32(input[k]) << 16 | UInt32(input[k + 1]) << 8
            out += [alphabet[Int(n >> 18)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)], UInt8(ascii: "=")]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// 0–63 for each alphabet byte (both alphabets), 64 for `=`, 65 for ASCII whitespace,
    /// 255 for anything else.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "_"))] = 63
        table[Int(UInt8(ascii: "="))] = 64
        for byte in [UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t")] { table[Int(byte)] = 65 }
        return table
    }()

    public static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: text.count / 4 * 3 + 3)
        var written = 0
        let ok = values.withUnsafeBufferPointer { table -> Bool in
            out.withUnsafeMutableBufferPointer { target -> Bool in
                text.withUnsafeBufferPointer { source -> Bool in
                    var accumulator: UInt32 = 0, bits = 0, padding = 0
                    var k = 0
                    let n = source.count
                    // Four alphabet bytes at a time while there is no padding or whitespace.
                    while k + 4 <= n {
                        let a = table[Int(source[k])], b = table[Int(source[k + 1])], c = table[Int(source[k + 2])], d = table[Int(source[k + 3])]
                        guard (a | b | c | d) < 64 else { break }
                        let group = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                        target[written] = UInt8(truncatingIfNeeded: group >> 16)
                        target[written + 1] = UInt8(truncatingIfNeeded: group >> 8)
                        target[written + 2] = UInt8(truncatingIfNeeded: group)
                        written += 3
                        k += 4
                    }
                    // The rest one byte at a time: padding, whitespace, a short last group.
                    while k < n {
                        let value = table[Int(source[k])]
                        k += 1
                        switch value {
                        case 65: continue
                        case 64:
                            padding += 1
                            continue
                        case 255: return false
                        default:
                            guard padding == 0 else { return false }
                            accumulator = accumulator << 6 | UInt32(value)
                            bits += 6
                            if bits >= 8 {
                                bits -= 8
                                if written == target.count { return false }
                                target[written] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                                written += 1
                            }
                        }
                    }
                    // Leftover bits must be zero padding of the last group (at most 4 bits).
                    return bits < 6 && padding <= 2
                }
            }
        }
        guard ok else { return nil }
        out.removeSubrange(written...)
        return out
    }
}
