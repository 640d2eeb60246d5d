import Foundation
import Yams

/// A configuration problem: printed as is, exit code 2.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

public func configError(_ key: String, _ reason: String) -> ConfigurationError {
    ConfigurationError(description: "configuration error: \(key): \(reason)")
}

/// Where each setting's value comes from: a flag wins over the environment (`PALISADE_<KEY>`), the
/// environment over the configuration file. Values are read and checked against `Setting.all` here
/// and nowhere else.
struct SettingSources {
    enum Origin { case file, environment, flag }

    private var values: [String: (node: Yams.Node, origin: Origin)] = [:]
    private var flags: [String: [String]]
    /// The configuration file's directory with a trailing slash, or "" without a file.
    let base: String

    /// `flags` holds each given flag's values by setting key (a switch that is on: `["true"]`).
    init(configFile: String?, environment: [String: String], flags: [String: [String]]) throws {
        let keys = Set(Setting.all.map(\.key))
        var base = ""
        if let path = configFile {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw configError("config", "cannot read \(path)") }
            do {
                guard let mapping = try Yams.compose(yaml: text)?.mapping else { throw configError("config", "\(path) must be a mapping of keys") }
                for (key, value) in mapping {
                    guard let name = key.string, keys.contains(name) else {
                        throw configError(key.string ?? "?", "\(path):\(key.mark?.line ?? 0): unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
                    }
                    values[name] = (value, .file)
                }
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw configError("config", "\(path) is not valid YAML: \(error)")
            }
            base = URL(fileURLWithPath: path).deletingLastPathComponent().path + "/"
        }
        // Values are YAML scalars or flow mappings ({agent: policy.yaml}).
        for setting in Setting.all {
            guard let value = environment[setting.environmentName] else { continue }
            do {
                guard let node = try Yams.compose(yaml: value) else { continue }
                values[setting.key] = (node, .environment)
            } catch {
                throw configError(setting.key, "\(setting.environmentName) is not a valid value: \(error)")
            }
        }
        for (key, given) in flags where Setting.named(key).kind != .mapping && Setting.named(key).kind != .list {
            values[key] = (Yams.Node(given.last!), .flag)
        }
        self.flags = flags.filter { [.mapping, .list].contains(Setting.named($0.key).kind) }
        self.base = base
    }

    func string(_ key: String) throws -> String? {
        guard let node = values[key]?.node else { return nil }
        guard let value = node.string else { throw configError(key, "expected a string") }
        return value
    }

    func path(_ key: String) throws -> String? {
        guard let value = try string(key) else { return nil }
        return resolve(value, origin: values[key]!.origin)
    }

    func resolve(_ path: String, origin: Origin) -> String {
        path.hasPrefix("/") || origin != .file ? path : base + path
    }

    func integer(_ key: String) throws -> Int? {
        guard let node = values[key]?.node else { return nil }
        guard let value = node.int else { throw configError(key, "expected an integer") }
        guard case .integer(let range) = Setting.named(key).kind, range.contains(value) else {
            let range = { if case .integer(let range) = Setting.named(key).kind { range } else { 0...0 } }()
            throw configError(key, "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return value
    }

    func number(_ key: String) throws -> Double? {
        guard let node = values[key]?.node else { return nil }
        guard let value = node.float else { throw configError(key, "expected a number") }
        return value
    }

    /// A switch is on if any source turns it on.
    func isOn(_ key: String) -> Bool {
        values[key]?.node.bool == true
    }

    /// The file's or the environment's `NAME: VALUE` entries, then each flag's `NAME=VALUE`.
    func mapping(_ key: String, flagForm: String) throws -> [(name: String, value: String, origin: Origin)] {
        var entries: [(String, String, Origin)] = []
        if let (node, origin) = values[key] {
            guard let mapping = node.mapping else { throw configError(key, "expected \(flagForm.replacingOccurrences(of: "=", with: ": ")) entries") }
            for (name, value) in mapping {
                guard let name = name.string, let value = value.string else { throw configError(key, "expected \(flagForm.replacingOccurrences(of: "=", with: ": ")) entries") }
                entries.append((name, value, origin))
            }
        }
        for entry in flags[key] ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw configError(Setting.named(key).flag, "expected \(flagForm), got '\(entry)'") }
            entries.append((String(parts[0]), String(parts[1]), .flag))
        }
        return entries
    }

    /// The flags' values if any were given, else the file's or the environment's value or list.
    func list(_ key: String) throws -> [(value: String, origin: Origin)] {
        if let given = flags[key], !given.isEmpty { return given.map { ($0, .flag) } }
        guard let (node, origin) = values[key] else { return [] }
        guard let list = node.sequence?.compactMap({ $0.string }) ?? node.string.map({ [$0] }) else {
            throw configError(key, "expected a value or a list of them")
        }
        return list.map { ($0, origin) }
    }
}
