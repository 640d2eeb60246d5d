import ArgumentParser
import AuditChain
import Foundation
import PalisadeServer
import Encoding

/// `palisade audit …`: reviewer tooling for the audit log (issue 5).
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Create signing keys for, verify, list, export and report on the audit log.",
        subcommands: [AuditKeygen.self, AuditPublicKey.self, AuditVerify.self, AuditList.self, AuditProve.self,
                      AuditCheckProof.self, AuditExport.self, AuditVerifyExport.self, AuditReport.self, AuditBench.self,
                      AuditGenerate.self])
}

struct AuditKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Create an Ed25519 key for signing audit checkpoints.",
        discussion: """
        Writes the private key to FILE (mode 0600, never overwritten) in Go's note format \
        PRIVATE+KEY+<name>+<hash>+<key>, and prints the verifier key <name>+<hash>+<key> on \
        standard output: give that to reviewers, through a channel other than the log directory.
        """)

    @Option(help: "Where to write the private key.") var out: String
    @Option(help: "The key name that appears in signatures (no spaces, no '+').") var name = "palisade-audit"

    func run() throws {
        let key = try AuditSigningKey.generate(name: name)
        let fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError(description: "cannot create \(out): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The umask may only narrow the mode, but an inherited ACL or odd umask must not widen it.
        fchmod(fd, 0o600)
        let bytes = Array((key.encoded + "\n").utf8)
        guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw ConfigurationError(description: "cannot write \(out): \(String(cString: strerror(errno)))")
        }
        print(key.verifierKey.encoded)
        Console.standardError("palisade audit keygen: private key in \(out); the line above is the verifier key for reviewers")
    }
}

struct AuditPublicKey: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vkey", abstract: "Print the verifier key of a signing key file.")

    @Argument(help: "The private key file from 'palisade audit keygen'.") var keyFile: String

    func run() throws {
        print(try KeyFiles.signingKey(keyFile).verifierKey.encoded)
    }
}

/// Exit codes and inputs shared by the audit subcommands.
enum AuditCLI {
    static let exitCodeHelp = """
        Exit codes:
          0  ok: every entry checks; the last is covered by an authentic checkpoint
          2  usage error
          3  malformed: not a log; a torn tail (crash, log not reopened yet)
          4  tampered: an entry changed, removed, inserted or moved
          5  truncated: a signed checkpoint covers more entries than the log has
          6  bad signature: a checkpoint not signed by a trusted key, or of another log
          7  unanchored: all checks pass, but the newest entries are not signed yet
        """

    static func label(_ outcome: VerificationReport.Outcome) -> String {
        outcome == .badSignature ? "BAD SIGNATURE" : outcome.rawValue.uppercased()
    }

    static func warn(_ message: String) {
        Console.standardError("warning: " + message)
    }

    /// Prints to standard error and exits with the outcome's code.
    static func fail(_ outcome: VerificationReport.Outcome, _ message: String) -> ExitCode {
        Console.standardError(message)
        return ExitCode(outcome.exitCode)
    }

    /// `--key` values: a verifier key, or a file of them (one a line; a signing key file works too).
    /// Without any, the key the log keeps in its own directory, with a warning: whoever can rewrite
    /// the log can rewrite that file.
    static func trustedKeys(_ specs: [String], logDirectory: String?) throws -> [NoteVerifierKey] {
        var keys: [NoteVerifierKey]
        do { keys = try KeyFiles.trustedKeys(specs) } catch { throw ValidationError(error.description) }
        if keys.isEmpty, let logDirectory,
           let text = try? String(contentsOfFile: logDirectory + "/" + LogFiles.vkeyFileName, encoding: .utf8) {
            keys = text.split(separator: "\n").compactMap { try? NoteVerifierKey(parsing: String($0)) }
            if !keys.isEmpty {
                warn("no --key given: using \(LogFiles.vkeyFileName) from the log directory, which proves nothing against whoever can write there")
            }
        }
        return keys
    }

    /// Runs the verifier over a log directory and any checkpoint mirrors.
    static func verify(_ logDirectory: String, mirrors: [String], keys: [NoteVerifierKey], collectLeaves: Bool = false,
                       onEntry: ((AuditEntry) -> Void)? = nil) throws -> (VerificationReport, [AuditHash]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: logDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw fail(.malformed, "\(logDirectory) is not a directory")
        }
        var sources: [(source: String, text: String)] = []
        for directory in [logDirectory] + mirrors {
            let found: [(source: String, text: String)]
            do {
                found = try LogFiles.checkpointSources(in: directory)
            } catch {
                throw fail(.malformed, "cannot read the checkpoints in \(directory): \(error.localizedDescription)")
            }
            // A mirror is named as a trust anchor: one that holds nothing anchors nothing.
            if found.isEmpty, directory != logDirectory {
                throw fail(.malformed, "\(directory) holds no checkpoints (neither \(CheckpointHistory.fileName) nor \(CheckpointHistory.latestFileName))")
            }
            sources += found
        }
        var verifier = LogVerifier(trustedKeys: keys, checkpointSources: sources)
        verifier.collectLeaves = collectLeaves
        verifier.onEntry = onEntry
        do {
            for segment in try LogFiles.segments(in: logDirectory) {
                verifier.feed(segment: segment.number, bytes: try LogFiles.read(segment.path))
                if verifier.problem != nil { break }
            }
        } catch {
            throw fail(.malformed, "cannot read \(logDirectory): \(error.localizedDescription)")
        }
        return (verifier.finish(), verifier.leaves)
    }

    static func time(_ text: String?, _ option: String) throws -> Int64? {
        guard let text else { return nil }
        guard let micros = UTCTime.parseISO8601(text) else {
            throw ValidationError("\(option) \"\(text)\" is not ISO 8601 (2025-06-01, 2025-06-01T12:00:00Z, …+02:00)")
        }
        return micros
    }

    static func readInput(_ path: String) throws -> String {
        if path == "-" { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail(.malformed, "cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }
}
