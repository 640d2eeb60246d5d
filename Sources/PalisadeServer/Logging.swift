import Encoding
import Foundation
import Logging

/// One JSON object per line on standard error, for log collectors. Palisade's log messages and
/// metadata carry ids, rules and normalized text only, never credentials or literal values.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = ["time": UTCTime.format(UTCTime.nowMicros()),
                                        "level": event.level.rawValue, "logger": label, "message": event.message.description]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
        let line = "{" + fields.sorted { $0.key < $1.key }.map { "\(JSONText.quoted($0.key)):\(JSONText.quoted($0.value))" }
            .joined(separator: ",") + "}\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// swift-log's text lines on standard error, with what a client wrote shown, not obeyed: a denied
/// query's normalized text and identifiers go into the notice's metadata (`TerminalText`).
struct TextLogHandler: LogHandler {
    var stream: StreamLogHandler

    var metadata: Logger.Metadata {
        get { stream.metadata }
        set { stream.metadata = newValue.mapValues(Self.escaped) }
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { stream[metadataKey: key] }
        set { stream[metadataKey: key] = newValue.map(Self.escaped) }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(TerminalText.escaped(event.message.description))"
        event.metadata = event.metadata?.mapValues(Self.escaped)
        stream.log(event: event)
    }

    private static func escaped(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        .string(TerminalText.escaped("\(value)"))
    }
}

public enum LogSetup {
    public static func bootstrap(format: String, level: String) throws {
        guard let level = Logger.Level(rawValue: level) else {
            throw configError("log_level", "expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        switch format {
        case "json":
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = TextLogHandler(stream: StreamLogHandler.standardError(label: label))
                handler.logLevel = level
                return handler
            }
        default:
            throw configError("log_format", "expected text or json, got '\(format)'")
        }
    }
}
