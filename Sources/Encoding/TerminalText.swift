/// Text for a terminal, one line of it: what a client chose (an identifier, a query's text, a
/// tenant's name) is shown, never obeyed. Control characters are escape sequences to a terminal:
/// a denied query's quoted identifier of ESC [2K, CR and BEL erased its own line and the one above
/// in `palisade audit list` and wrote other text there, and set the window's title (sixteenth red
/// team). Bidirectional overrides reorder what is shown after them.
public enum TerminalText {
    /// `text` with C0 and C1 control characters, DEL and the bidirectional controls written as
    /// `\x1b` or `\u{202e}`, and a backslash as `\\`, so that the escaped form is unambiguous.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            if !needsEscape(scalar) {
                result.unicodeScalars.append(scalar)
            } else if scalar == "\\" {
                result += "\\\\"
            } else if scalar.value < 0x100 {
                result += "\\x" + Hex.encode([UInt8(scalar.value)])
            } else {
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            }
        }
        return result
    }

    private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x5C: true
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}
