/// The types a server defines (`pg_type`), read by `palisade serve` at start and at each policy
/// reload. A client's Parse message may declare its parameters' types by OID, which the text never
/// shows; the server then reads each bound value with that type's input function, so `SELECT $1::text`
/// with `$1` declared regrole names a role, and declared xml parses XML.
public struct ServerTypes: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var schema: String
        public var name: String
        /// The types whose input functions reading this one runs too: an array's element, a domain's
        /// base type, a range's subtype, a multirange's range, a composite type's column types.
        public var components: [UInt32]

        public init(schema: String, name: String, components: [UInt32] = []) {
            self.schema = schema
            self.name = name
            self.components = components
        }
    }

    public var byOID: [UInt32: Entry]

    public init(_ byOID: [UInt32: Entry] = [:]) {
        self.byOID = byOID
    }
}

extension PolicyEngine {
    /// `decision`, the text's admission, unless the policy's type rules refuse a parameter's declared
    /// type (or a type it is made of), or the server did not define its OID when its types were read:
    /// then the denial for the first such parameter, with the text's normalized form, fingerprint
    /// and statement type. 0 (unspecified: the server infers the type from the checked text) is admitted.
    public func checkParameterTypes(_ declared: [UInt32], of types: ServerTypes, admitting decision: Decision) -> Decision {
        guard var denial = firstParameterTypeDenial(declared, of: types) else { return decision }
        denial.statementType = decision.statementType
        denial.fingerprintValue = decision.fingerprintValue
        denial.normalized = decision.normalized
        return denial
    }

    private func firstParameterTypeDenial(_ declared: [UInt32], of types: ServerTypes) -> Decision? {
        for (index, oid) in declared.enumerated() where oid != 0 {
            let declaredAs = types.byOID[oid].map { "declared as \($0.schema).\($0.name)" } ?? "declared with type OID \(oid)"
            var seen: Set<UInt32> = []
            var unchecked = [oid]
            while let current = unchecked.popLast() {
                guard seen.insert(current).inserted else { continue }
                guard let type = types.byOID[current] else {
                    let unknown = current == oid ? "" : ", which holds type OID \(current),"
                    return Decision(rule: .parameterType,
                                    message: "parameter $\(index + 1) is \(declaredAs)\(unknown) which the server did not define when Palisade last read its types",
                                    hint: "Declare parameters as 0 (unspecified) or with built-in types; types created since Palisade started are known after a policy reload.",
                                    policyVersion: policy.version)
                }
                // The engine's own type rules, as they apply to a cast to the type in query text.
                let cast = evaluate("SELECT NULL::\(Self.quoted(type.schema)).\(Self.quoted(type.name))")
                if !cast.isAllowed {
                    var reason = cast.message
                    if let position = cast.position, reason.hasSuffix(" (at character \(position))") {
                        reason.removeLast(" (at character \(position))".count)
                    }
                    let holds = current == oid ? "" : ", which holds \(type.schema).\(type.name)"
                    return Decision(rule: cast.rule, message: "parameter $\(index + 1) is \(declaredAs)\(holds): \(reason)",
                                    hint: cast.hint.map { "Declare the parameter as 0 (unspecified) or another type. " + $0 },
                                    policyVersion: policy.version)
                }
                unchecked.append(contentsOf: type.components)
            }
        }
        return nil
    }

    private static func quoted(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
