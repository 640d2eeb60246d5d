import MCP
import QueryPolicy
import Testing
@testable import PalisadeMCP

@Suite struct ToolCatalogTests {
    @Test func explainIsOfferedOnlyWhereTheProfileAdmitsIt() {
        #expect(ToolCatalog.tools(allowsExplain: false).map(\.name) == ["query", "list_tables", "describe_table", "check"])
        #expect(ToolCatalog.tools(allowsExplain: true).map(\.name) == ["query", "list_tables", "describe_table", "check", "explain"])
        for tool in ToolCatalog.tools(allowsExplain: true) {
            #expect(tool.inputSchema.objectValue?["type"] == "object")
            #expect(tool.inputSchema.objectValue?["additionalProperties"] == false)
            #expect((tool.description ?? "").count > 80)
        }
    }

    @Test func sqlArgumentsAreCheckedAgainstTheSchema() throws {
        #expect(try ToolCatalog.arguments(for: .query, ["sql": "SELECT 1"]) == .sql("SELECT 1"))
        #expect(try ToolCatalog.arguments(for: .listTables, nil) == ToolCatalog.Arguments.none)
        #expect(throws: ToolCatalog.ArgumentError.self) { try ToolCatalog.arguments(for: .query, nil) }
        #expect(throws: ToolCatalog.ArgumentError.self) { try ToolCatalog.arguments(for: .query, ["sql": 1]) }
        #expect(throws: ToolCatalog.ArgumentError.self) { try ToolCatalog.arguments(for: .query, ["sql": "  \n"]) }
        #expect(throws: ToolCatalog.ArgumentError(description: "check takes sql, not 'query'")) {
            try ToolCatalog.arguments(for: .check, ["sql": "SELECT 1", "query": "x"])
        }
        #expect(throws: ToolCatalog.ArgumentError.self) { try ToolCatalog.arguments(for: .listTables, ["schema": "public"]) }
    }

    @Test func tableNamesAreFoldedOrQuotedAsPostgreSQLReadsThem() throws {
        #expect(try ToolCatalog.arguments(for: .describeTable, ["table": "Orders"]) == .table(schema: nil, name: "orders"))
        #expect(try ToolCatalog.arguments(for: .describeTable, ["table": "public.orders"]) == .table(schema: "public", name: "orders"))
        #expect(try ToolCatalog.arguments(for: .describeTable, ["table": #""Sales"."Order ""Items""""#])
            == .table(schema: "Sales", name: "Order \"Items\""))
        #expect(try ToolCatalog.arguments(for: .describeTable, ["table": #""a.b""#]) == .table(schema: nil, name: "a.b"))
        for bad in ["", "a.b.c", ".orders", "orders.", #""open"#, #""a"b"#, String(repeating: "x", count: 200)] {
            #expect(throws: ToolCatalog.ArgumentError.self, "\(bad)") { try ToolCatalog.arguments(for: .describeTable, ["table": .string(bad)]) }
        }
    }
}
