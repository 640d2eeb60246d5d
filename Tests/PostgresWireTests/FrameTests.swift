import NIOCore
import Testing
@testable import PostgresWire

@Suite struct FrontendMessageTests {
    /// PostgreSQL keys statements and portals by their first 63 bytes: so does the proxy, which
    /// then holds no more than that of a name however long the client sends it.
    @Test func statementAndPortalNamesAreReadAsPostgreSQLKeysThem() throws {
        let long = String(repeating: "n", count: 70_000)
        var buffer = ByteBuffer()
        FrontendEncoder.bind(portal: long, statement: "é" + long, parameters: [], into: &buffer)
        let frame = Frame(type: buffer.readInteger(as: UInt8.self)!, body: buffer.getSlice(at: buffer.readerIndex + 4, length: buffer.readableBytes - 4)!)
        guard case .bind(let portal, let statement) = try FrontendMessage(frame) else { Issue.record("not a Bind"); return }
        #expect(portal == String(repeating: "n", count: 63))
        #expect(statement.utf8.count == 63 && statement.hasPrefix("é"))
    }

    /// The simple-query tail written in one piece is the four messages written one by one.
    @Test func runningTheUnnamedStatementIsBindDescribeExecuteAndSync() {
        for maxRows: Int32 in [0, 1, 10_001, Int32.max] {
            var expected = ByteBuffer()
            FrontendEncoder.bind(portal: "", statement: "", parameters: [], into: &expected)
            FrontendEncoder.describePortal("", into: &expected)
            FrontendEncoder.execute(portal: "", maxRows: maxRows, into: &expected)
            FrontendEncoder.sync(into: &expected)
            var written = ByteBuffer()
            FrontendEncoder.runUnnamedStatement(maxRows: maxRows, into: &written)
            #expect(written == expected, "maxRows \(maxRows)")
        }
    }
}
