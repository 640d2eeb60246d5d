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
/// on a thread with enough stack (CPalisadeSupport's long-lived worker), so no input can overflow
/// a stack.
enum PgQuery {
    static let stackBytesPerInputByte = 400
    static let stackBaseBytes = 512 * 1024

    struct ParseError: Error, Sendable {
        var message: String
        /// 1-based character position of the error in the text, as Postgres reports it; 0 if unknown.
        var cursorPosition: Int

        init(message: String, cursorPosition: Int) {
            self.message = message
            self.cursorPosition = cursorPosition
        }

        init(_ error: PgQueryError) {
            self.init(message: error.message.map { String(cString: $0) } ?? "syntax error", cursorPosition: Int(error.cursorpos))
        }
    }

    /// One parse of a text, alive while the closure given to `withParseTree` runs.
    struct ParsedText {
        /// libpg_query's JSON parse tree.
        let json: UnsafeBufferPointer<UInt8>
        fileprivate let source: Source

        fileprivate enum Source {
            case rawTree(UnsafeMutableRawPointer?)
            case publicAPI(String)
        }

        /// libpg_query's fingerprint of the text, hashed from this same parse.
        var fingerprint: UInt64? {
            switch source {
            case .rawTree(let nodes):
                // The port hashes the JSON at a fraction of libpg_query's cost; where the JSON
                // cannot tell (see ParseTreeFingerprint), libpg_query hashes its own tree.
                ParseTreeFingerprint.fingerprint(json: json) ?? pg_query_fingerprint_node(nodes)
            case .publicAPI(let text): PgQuery.fingerprint(text)
            }
        }
    }

    /// Parses `text` and hands the parse to `body` while it is still alive. `body` runs on the
    /// same stack, with room for a walk `walkDepth` levels deep.
    static func withParseTree<R>(
        _ text: String, walkDepth: Int = 0, _ body: (ParsedText) throws -> R
    ) throws -> R {
        try withSufficientStack(forTextOfLength: text.utf8.count, walkDepth: walkDepth) {
            internalAPIAgrees ? try withRawParse(text, body) : try withPublicParse(text, body)
        }
    }

    /// Parses once with libpg_query's internal API: the JSON tree and the fingerprint come from
    /// the same tree, and everything is freed with the memory context.
    private static func withRawParse<R>(_ text: String, _ body: (ParsedText) throws -> R) throws -> R {
        let context = pg_query_enter_memory_context()
        defer { pg_query_exit_memory_context(context) }
        let result = text.withCString { pg_query_raw_parse($0) }
        free(result.stderr_buffer)
        if let error = result.error {
            defer { pg_query_free_error(error) }
            throw ParseError(error.pointee)
        }
        guard let json = pg_query_nodes_to_json(result.tree) else {
            throw ParseError(message: "libpg_query returned no parse tree", cursorPosition: 0)
        }
        return try json.withMemoryRebound(to: UInt8.self, capacity: 1) { bytes in
            try body(ParsedText(json: UnsafeBufferPointer(start: bytes, count: strlen(json)), source: .rawTree(result.tree)))
        }
    }

    private static func withPublicParse<R>(_ text: String, _ body: (ParsedText) throws -> R) throws -> R {
        let result = text.withCString { pg_query_parse($0) }
        defer { pg_query_free_parse_result(result) }
        if let error = result.error { throw ParseError(error.pointee) }
        guard let tree = result.parse_tree else {
            throw ParseError(message: "libpg_query returned no parse tree", cursorPosition: 0)
        }
        return try tree.withMemoryRebound(to: UInt8.self, capacity: 1) { bytes in
            try body(ParsedText(json: UnsafeBufferPointer(start: bytes, count: strlen(tree)), source: .publicAPI(text)))
        }
    }

    /// libpg_query's own parse of `text` to JSON through its public API, as a baseline for benchmarks.
    static func publicParseTreeLength(_ text: String) -> Int? {
        try? withSufficientStack(forTextOfLength: text.utf8.count) {
            try withPublicParse(text) { $0.json.count }
        }
    }

    /// The internal entry points are not a published interface: before the first use in a process,
    /// they must reproduce the public API's tree and fingerprint for a text that exercises lists,
    /// constants and names, or Palisade stays on the public API.
    static let internalAPIAgrees: Bool = {
        let canary = "SELECT a, count(*) AS n, 'x' FROM s.t AS u JOIN v ON u.k = v.k WHERE b IN (1, 2.5) GROUP BY 1 ORDER BY n DESC LIMIT $1"
        guard let expected = try? withPublicParse(canary, { (String(decoding: $0.json, as: UTF8.self), fingerprint(canary)) }),
              let actual = try? withRawParse(canary, { (String(decoding: $0.json, as: UTF8.self), $0.fingerprint) })
        else { return false }
        return expected.0 == actual.0 && expected.1 == actual.1 && actual.1 != nil
    }()

    /// libpg_query's fingerprint through its public API, which parses the text again.
    static func fingerprint(_ text: String) -> UInt64? {
        try? withSufficientStack(forTextOfLength: text.utf8.count) {
            let result = text.withCString { pg_query_fingerprint($0) }
            defer { pg_query_free_fingerprint_result(result) }
            guard result.error == nil, result.fingerprint_str != nil else { return nil }
            return result.fingerprint
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

/// Carries a closure across the C thread boundary; the caller waits until it has run.
private final class ThreadTask: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
