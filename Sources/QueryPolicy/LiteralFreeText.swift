/// Query text without literal values, as the engine logs it: libpg_query's normalization (every
/// constant replaced by `$n`), or the lexer's where the text does not parse. For readers of logs
/// whose policy kept raw text (`audit.raw_query_text`); normalized text comes back unchanged in effect.
public enum LiteralFreeText {
    public static func of(_ sql: String) -> String {
        if let normalized = PgQuery.normalize(sql) { return normalized }
        var text = sql
        return text.withUTF8 { SQLLexer(bytes: $0).replacingAllConstants() }
    }
}
