/// Character classes as the Hugging Face `tokenizers` library reads them (Rust's `char`
/// predicates, the `unicode_categories` crate, Oniguruma's `\s`, `\w`, `\p{L}`, `\p{N}`), with
/// an ASCII fast path: most text is ASCII, and the general-category lookup is the slow part.
enum TextClass {
    /// Rust's `char::is_whitespace` and Oniguruma's `\s`: the Unicode White_Space property.
    @inline(__always) static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return c.properties.isWhitespace
    }

    /// `\p{L}`.
    @inline(__always) static func isLetter(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// `\p{N}`, and Rust's `char::is_numeric`: Nd, Nl, No.
    @inline(__always) static func isNumber(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Oniguruma's Unicode `\w` (UTS #18's word characters): Alphabetic, Mark, Decimal_Number,
    /// Connector_Punctuation and Join_Control (so a zero-width joiner is a word character).
    @inline(__always) static func isWord(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return isLetter(c) || (v >= 0x30 && v <= 0x39) || v == 0x5F }
        let properties = c.properties
        if properties.isAlphabetic || properties.isJoinControl { return true }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// BERT's punctuation: ASCII punctuation (which includes symbols such as `$`, `+`, `^`)
    /// or a Unicode P* category.
    @inline(__always) static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x80 { return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E) }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default: return false
        }
    }

    /// `unicode_categories`' `is_other` (Cc, Cf, Cn, Co, Cs), as BERT's cleaning removes it;
    /// tab, newline and carriage return are white space there, not control.
    @inline(__always) static func isControl(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v == 0x09 || v == 0x0A || v == 0x0D { return false }
        if v < 0x80 { return v < 0x20 || v == 0x7F }
        switch c.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks BERT puts spaces around.
    @inline(__always) static func isChineseCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    @inline(__always) static func isNonspacingMark(_ c: Unicode.Scalar) -> Bool {
        c.value >= 0x300 && c.properties.generalCategory == .nonspacingMark
    }

    @inline(__always) static func isMark(_ c: Unicode.Scalar) -> Bool {
        guard c.value >= 0x300 else { return false }
        switch c.properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// Rust's `char::to_lowercase`: the full mapping (`İ` is two scalars).
    @inline(__always) static func appendLowercase(_ c: Unicode.Scalar, to out: inout [Unicode.Scalar]) {
        let v = c.value
        if v < 0x80 {
            out.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(v | 0x20)! : c)
            return
        }
        out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
    }
}
