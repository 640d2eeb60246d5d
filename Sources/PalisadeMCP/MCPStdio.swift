import Foundation
import MCP
import NIOCore

/// An MCP server (the SDK's) whose tools are one session's.
enum MCPServerFactory {
    static let serverName = "palisade"
    static let serverVersion = "1.0.0"

    /// `credential` gives the credential of the call being handled (the process's over stdio, the
    /// request's over HTTP).
    static func server(for session: MCPToolSession, credential: @escaping @Sendable () -> String?) async -> Server {
        let identity = session.identity
        let server = Server(
            name: serverName, version: serverVersion, title: "Palisade SQL firewall",
            instructions: """
            Read-only SQL over PostgreSQL through Palisade's firewall, as tenant \(identity.tenant) with profile \(identity.profile). \
            Row-level security shows only this tenant's rows. Start with list_tables and describe_table, then query. \
            A refused statement comes back as an error with its rule and a hint: follow the hint and try again.
            """,
            capabilities: Server.Capabilities(tools: .init(listChanged: false)))
        let tools = session.tools
        await server.withMethodHandler(ListTools.self) { _ in ListTools.Result(tools: tools) }
        await server.withMethodHandler(CallTool.self) { parameters in
            await session.call(parameters.name, arguments: parameters.arguments, credential: credential())
        }
        return server
    }
}

/// `palisade mcp` over standard input and output: one session for the process's credential, the
/// way desktop agents (Claude Desktop, Cursor) start a server.
public enum MCPStdio {
    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Verifies `credential`, then serves until standard input ends or the server `onStart` is
    /// handed is stopped (on SIGTERM).
    public static func serve(firewall: MCPFirewall, credential: String?, group: EventLoopGroup,
                             onStart: @Sendable (Server) -> Void) async throws {
        guard let credential, !credential.isEmpty else {
            throw StartFailure(description: "PALISADE_CREDENTIAL is not set: give the agent's API key or JWT in the environment")
        }
        let identity: MCPIdentity
        switch firewall.identify(credential) {
        case .failure(let refusal):
            try await firewall.recordRefusal(refusal, transport: .stdio, clientAddress: "stdio")
            throw StartFailure(description: "PALISADE_CREDENTIAL is refused: \(refusal.message)")
        case .success(let verified):
            identity = verified
        }
        if let sessions = firewall.budgets.sessions {
            guard sessions.open(tenant: identity.tenant) else {
                let refusal = sessions.refusal(tenant: identity.tenant)
                try await firewall.recordRefusal(CredentialRefusal(rule: .tooManySessions, message: refusal.message, sqlstate: refusal.sqlstate,
                                                                   credentialID: identity.credentialID, tenant: identity.tenant),
                                                 transport: .stdio, clientAddress: "stdio")
                throw StartFailure(description: refusal.message)
            }
        }
        defer { firewall.budgets.sessions?.close(tenant: identity.tenant) }
        let session = MCPToolSession(firewall: firewall, identity: identity, transport: .stdio, clientAddress: "stdio", group: group)
        let server = await MCPServerFactory.server(for: session) { credential }
        try await server.start(transport: StdioTransport())
        onStart(server)
        await server.waitUntilCompleted()
        await session.close()
    }
}
