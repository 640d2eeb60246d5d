import Foundation
import Encoding

/// Text for messages that reach clients and the audit log. Written by hand because
/// DateFormatter is locale-dependent and slow, and these run on every refusal.
enum Formatting {
    /// `2026-11-23T07:00:00Z`; fractional seconds are dropped (`roundUp` rounds to the next
    /// second instead, for "retry after" times a client must not act on too early).
    static func utc(_ date: Date, roundUp: Bool = false) -> String {
        let raw = date.timeIntervalSince1970
        // Claims can carry any number; keep the arithmetic inside Int64 and the year in 4 digits.
        let clamped = min(max(roundUp ? raw.rounded(.up) : raw.rounded(.down), -62_135_596_800), 253_402_300_799)
        return UTCTime.formatSeconds(Int64(clamped))
    }

    /// "60 s", "1.5 s", "120 ms": the unit a person reading an error expects.
    static func duration(_ duration: Duration) -> String {
        let ms = milliseconds(duration, roundUp: false)
        if ms < 1000 { return "\(milliseconds(duration, roundUp: true)) ms" }
        if ms % 1000 == 0 { return "\(ms / 1000) s" }
        return "\(number(Double(ms) / 1000)) s"
    }

    static func milliseconds(_ duration: Duration, roundUp: Bool) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let perMs: Int64 = 1_000_000_000_000_000
        let extra = attoseconds / perMs + (roundUp && attoseconds % perMs > 0 ? 1 : 0)
        return seconds * 1000 + extra
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// "100" for whole numbers, "2.5" otherwise.
    static func number(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A value taken from a token, fit to quote in a message: bounded, no control characters.
    static func quoted(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(64) {
            out.unicodeScalars.append(scalar.properties.generalCategory == .control ? "?" : scalar)
        }
        return "'" + out + (text.unicodeScalars.count > 64 ? "…" : "") + "'"
    }
}
