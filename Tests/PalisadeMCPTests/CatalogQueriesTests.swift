import Foundation
import QueryPolicy
import Testing
@testable import PalisadeMCP

@Suite struct CatalogQueriesTests {
    @Test func readableSchemasAreQuotedLiterals() {
        #expect(CatalogQueries.schemaList(["public", "o'neil"]) == "'o''neil', 'public'")
    }

    @Test func anUnqualifiedNameResolvesAlongTheSearchPath() {
        let rows: [[String?]] = [["sales"], ["public"]]
        #expect(CatalogQueries.resolveSchema(of: rows, searchPath: ["public"]) == "public")
        #expect(CatalogQueries.resolveSchema(of: rows, searchPath: ["other"]) == "public")
        #expect(CatalogQueries.resolveSchema(of: [], searchPath: ["public"]) == nil)
    }

    @Test func describeGathersColumnsAndKeysOfTheResolvedSchema() throws {
        let columns: [[String?]] = [
            ["public", "orders", "tenant_id", "text", "f", nil, nil, "Orders placed"],
            ["public", "orders", "id", "integer", "f", nil, "the order number", "Orders placed"],
            ["public", "orders", "customer_id", "integer", "t", "0", nil, "Orders placed"],
            ["sales", "orders", "other", "text", "t", nil, nil, nil],
        ]
        let keys: [[String?]] = [
            ["f", "orders_customer_fkey", "tenant_id", "public", "customers", "tenant_id"],
            ["f", "orders_customer_fkey", "customer_id", "public", "customers", "id"],
            ["p", "orders_pkey", "tenant_id", nil, nil, nil],
            ["p", "orders_pkey", "id", nil, nil, nil],
            ["u", "orders_id_key", "id", nil, nil, nil],
        ]
        let text = try #require(CatalogQueries.describeDocument(columns: columns, keys: keys, searchPath: ["public"], requestID: "s-2"))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "public")
        #expect(document["comment"] as? String == "Orders placed")
        let described = try #require(document["columns"] as? [[String: Any]])
        #expect(described.map { $0["name"] as? String } == ["tenant_id", "id", "customer_id"])
        #expect(described[2]["nullable"] as? Bool == true && described[2]["default"] as? String == "0")
        #expect(described[1]["comment"] as? String == "the order number")
        #expect(document["primary_key"] as? [String] == ["tenant_id", "id"])
        #expect(document["unique"] as? [[String]] == [["id"]])
        let foreign = try #require(document["foreign_keys"] as? [[String: Any]])
        #expect(foreign.count == 1 && foreign[0]["columns"] as? [String] == ["tenant_id", "customer_id"])
        let references = try #require(foreign[0]["references"] as? [String: Any])
        #expect(references["table"] as? String == "customers" && references["columns"] as? [String] == ["tenant_id", "id"])
        #expect(CatalogQueries.describeDocument(columns: [], keys: [], searchPath: ["public"], requestID: "s-3") == nil)
    }

    @Test func checkReportsTheDecision() throws {
        let decision = Decision(rule: .dml, message: "DELETE is not allowed", hint: "Send a SELECT.", statementType: "DELETE",
                                tables: ["public.orders"], policyVersion: "v")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(CatalogQueries.checkDocument(decision, requestID: "s-1").utf8)) as? [String: Any])
        #expect(document["allowed"] as? Bool == false && document["rule"] as? String == "stmt.dml" && document["sqlstate"] as? String == "42501")
        #expect(document["hint"] as? String == "Send a SELECT." && document["tables"] as? [String] == ["public.orders"])
    }
}
