/// The tamper-evident audit log (issue 5). Filled in by the audit work.
public enum AuditChain {}
