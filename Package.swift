// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Palisade",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "palisade", targets: ["palisade"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
    ],
    targets: [
        // libpg_query from Debian's libpg-query-dev: the PostgreSQL 15 grammar.
        .systemLibrary(name: "CPgQuery", path: "Sources/CPgQuery"),
        // Small C helpers that Swift cannot express: stack headroom, big-stack threads, thread names.
        .target(name: "CPalisadeSupport", path: "Sources/CPalisadeSupport"),
        // JSON (strict reading, canonical RFC 8785 writing), hex, base64 and UTC times; no dependencies.
        .target(name: "Encoding"),
        // `Locked`, the one lock the modules share (ThreadSanitizer sees it); no dependencies.
        .target(name: "Locking"),
        .target(
            name: "QueryPolicy",
            dependencies: [
                "Encoding",
                "Locking",
                "CPgQuery",
                "CPalisadeSupport",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The tamper-evident audit log: canonical entries, hash chain, Merkle tree, signed checkpoints.
        .target(
            name: "AuditChain",
            dependencies: ["CPalisadeSupport", "Encoding", "Locking", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // Tenant identity: signed JWTs, API keys and their claims, per-tenant budgets; pure, no sockets.
        .target(
            name: "TenantIdentity",
            dependencies: [
                "Encoding",
                "Locking",
                "PostgresWire",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // PostgreSQL protocol 3.0: framing, messages, and the authentication exchanges; no sockets.
        .target(
            name: "PostgresWire",
            dependencies: [
                "Encoding",
                "Locking",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The proxy: per-session state machine (pure) and the SwiftNIO handlers that execute it.
        .target(
            name: "PalisadeProxy",
            dependencies: [
                "Locking",
                "PostgresWire",
                "QueryPolicy",
                "AuditChain",
                "TenantIdentity",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // `palisade mcp`: the same firewall behind Model Context Protocol tools (stdio and Streamable HTTP).
        .target(
            name: "PalisadeMCP",
            dependencies: [
                "Encoding",
                "PalisadeProxy",
                "PostgresWire",
                "QueryPolicy",
                "AuditChain",
                "Locking",
                "TenantIdentity",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The server's wiring: its settings table, start checks, lifecycle, reload, admin HTTP and logging.
        .target(
            name: "PalisadeServer",
            dependencies: [
                "Encoding",
                "Locking",
                "QueryPolicy",
                "AuditChain",
                "PalisadeProxy",
                "TenantIdentity",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "palisade",
            dependencies: [
                "Encoding",
                "Locking",
                "QueryPolicy",
                "AuditChain",
                "PalisadeProxy",
                "PalisadeServer",
                "PalisadeMCP",
                "TenantIdentity",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // libFuzzer targets (scripts/fuzz.sh builds them with -sanitize=fuzzer,address -DFUZZING). A plain
        // build makes each one a runner that checks the input files named on its command line once.
        .target(name: "FuzzSupport", path: "Fuzz/Support"),
        .executableTarget(name: "fuzz-policy", dependencies: ["FuzzSupport", "QueryPolicy", "CPgQuery"], path: "Fuzz/policy"),
        .executableTarget(
            name: "fuzz-wire",
            dependencies: ["FuzzSupport", "PostgresWire", "PalisadeProxy", "QueryPolicy", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/wire"
        ),
        .executableTarget(name: "fuzz-audit", dependencies: ["FuzzSupport", "AuditChain"], path: "Fuzz/audit"),
        .testTarget(name: "EncodingTests", dependencies: ["Encoding"]),
        .testTarget(name: "QueryPolicyTests", dependencies: ["QueryPolicy"]),
        .testTarget(name: "AuditChainTests", dependencies: ["AuditChain", "Encoding", "Locking"]),
        .testTarget(name: "PostgresWireTests", dependencies: ["PostgresWire"]),
        .testTarget(name: "PalisadeProxyTests", dependencies: ["PalisadeProxy", "PostgresWire", "QueryPolicy", "AuditChain"]),
        .testTarget(name: "PalisadeServerTests", dependencies: ["PalisadeServer"]),
        .testTarget(name: "PalisadeMCPTests", dependencies: ["PalisadeMCP", "QueryPolicy", .product(name: "MCP", package: "swift-sdk"),
                                                          .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(name: "TenantIdentityTests", dependencies: ["TenantIdentity", "Encoding"]),
    ]
)
