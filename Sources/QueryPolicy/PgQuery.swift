import CPalisadeSupport
import CPgQuery
#if canImport(Glibc)
import Glibc
#endif

/// The few libpg_query calls Palisade makes, each run with enough stack for the text it is given.
///
/// libpg_query recurses once per parse-tree level, and a left-deep operator chain such as
/// `1+1+1+…` is as deep as the text is long (measured: up to ~200 bytes of stack per input byte).
/// Texts whose worst case fits in the caller's remaining stack are parsed in place; larger ones
/// on a short-lived thread sized for them, so no input can overflow a stack.
enum PgQuery {
    static let stackBytesPerInputByte = 400
    static let stackBaseBytes = 512 * 1024

    struct ParseError: Error, Sendable {
        var message: String
        /// 1-based character position of the error in the text, as Postgres reports it; 0 if unknown.
        var cursorPosition: Int
    }

    /// Parses `text` and hands the JSON parse tree to `body` while it is still alive. `body` runs on
    /// the same stack, with room for a walk `walkDepth` levels deep.
    static func withParseTree<R>(
        _ text: String, walkDepth: Int = 0, _ body: (UnsafeBufferPointer<UInt8>) throws -> R
    ) throws -> R {
        try withSufficientStack(forTextOfLength: text.utf8.count, walkDepth: walkDepth) {
            let result = text.withCString { pg_query_parse($0) }
            defer { pg_query_free_parse_result(result) }
            if let error = result.error {
                throw ParseError(
                    message: error.pointee.message.map { String(cString: $0) } ?? "syntax error",
                    cursorPosition: Int(error.pointee.cursorpos))
            }
            guard let tree = result.parse_tree else {
                throw ParseError(message: "libpg_query returned no parse tree", cursorPosition: 0)
            }
            return try tree.withMemoryRebound(to: UInt8.self, capacity: 1) { bytes in
                try body(UnsafeBufferPointer(start: bytes, count: strlen(tree)))
            }
        }
    }

    /// libpg_query's fingerprint (16 hex digits), or nil if the text does not parse.
    static func fingerprint(_ text: String) -> String? {
        try? withSufficientStack(forTextOfLength: text.utf8.count) {
            let result = text.withCString { pg_query_fingerprint($0) }
            defer { pg_query_free_fingerprint_result(result) }
            guard result.error == nil, let hex = result.fingerprint_str else { return nil }
            return String(cString: hex)
        }
    }

    /// libpg_query's normalized text (constants replaced by `$n`), or nil if the text does not parse.
    static func normalize(_ text: String) -> String? {
        try? withSufficientStack(forTextOfLength: text.utf8.count) {
            let result = text.withCString { pg_query_normalize($0) }
            defer { pg_query_free_normalize_result(result) }
            guard result.error == nil, let normalized = result.normalized_query else { return nil }
            return String(cString: normalized)
        }
    }

    static func requiredStack(forTextOfLength length: Int, walkDepth: Int = 0) -> Int {
        stackBaseBytes + length * stackBytesPerInputByte + walkDepth * Analyzer.stackBytesPerLevel
    }

    /// The parser thread could not be created (the machine is out of threads or memory).
    struct NoParserThread: Error, Sendable { var errno: Int32 }

    static func withSufficientStack<R>(forTextOfLength length: Int, walkDepth: Int = 0, _ body: () throws -> R) throws -> R {
        let required = requiredStack(forTextOfLength: length, walkDepth: walkDepth)
        if palisade_stack_remaining() >= required {
            return try body()
        }
        return try onThread(withStack: required, body)
    }

    private static func onThread<R>(withStack stackBytes: Int, _ body: () throws -> R) throws -> R {
        try withoutActuallyEscaping(body) { body in
            var result: Result<R, any Error>?
            let task = ThreadTask { result = Result { try body() } }
            let status = palisade_run_with_stack(stackBytes, { context in
                Unmanaged<ThreadTask>.fromOpaque(context!).takeUnretainedValue().run()
            }, Unmanaged.passUnretained(task).toOpaque())
            // No thread could be made: refuse rather than risk the stack.
            guard status == 0, let result else { throw NoParserThread(errno: status) }
            return try result.get()
        }
    }
}

/// Carries a closure across the C thread boundary; the caller waits for the thread to end.
private final class ThreadTask: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
