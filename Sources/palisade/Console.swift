import Foundation

/// The one way a command writes to standard error: its errors, warnings and notices for the person
/// at the terminal (standard output stays the command's result, for pipes). A server's log lines
/// go through swift-log instead (`LogSetup`).
enum Console {
    static func standardError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
