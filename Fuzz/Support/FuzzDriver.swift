import Foundation

/// The `main` of every fuzz target.
///
/// Built with `-sanitize=fuzzer,address -DFUZZING` (scripts/fuzz.sh), it hands `test` to libFuzzer,
/// which takes the command line (`-max_total_time=…`, corpus directories). SwiftPM links an
/// executable's `main` under a name of its own, so libFuzzer's `main` never runs and its
/// `LLVMFuzzerRunDriver` is called instead; each target still defines `LLVMFuzzerTestOneInput`,
/// which libFuzzer's unused `main` refers to.
///
/// Built plainly (`swift build`), the target runs `test` once on each file or directory of files
/// named on the command line: a crash found by the fuzzer reproduces without instrumentation.
///
/// Either way `--write-seeds DIR` writes the target's seed inputs to DIR and exits.
public enum FuzzDriver {
    public typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

    /// The repository this file belongs to: the fuzz targets read the policies and corpora in it.
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    public static func run(_ test: TestOneInput, seeds: () -> [[UInt8]]) -> Never {
        let arguments = CommandLine.arguments
        if arguments.count == 3, arguments[1] == "--write-seeds" {
            exit(writeSeeds(seeds(), to: arguments[2]))
        }
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, test))
        #else
        var inputs = 0
        for path in arguments.dropFirst() {
            for file in files(at: path) {
                guard let data = FileManager.default.contents(atPath: file) else {
                    FileHandle.standardError.write(Data("cannot read \(file)\n".utf8))
                    exit(2)
                }
                let bytes = [UInt8](data)
                _ = bytes.withUnsafeBufferPointer { test($0.baseAddress, $0.count) }
                inputs += 1
            }
        }
        print("\(inputs) inputs checked")
        exit(0)
        #endif
    }

    private static func files(at path: String) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.sorted().map { path + "/" + $0 }
    }

    private static func writeSeeds(_ seeds: [[UInt8]], to directory: String) -> Int32 {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for (index, seed) in seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: directory + "/seed-\(index)"))
            }
        } catch {
            FileHandle.standardError.write(Data("cannot write seeds to \(directory): \(error)\n".utf8))
            return 2
        }
        print("\(seeds.count) seeds in \(directory)")
        return 0
    }

    /// Ends the run as a crash, so that libFuzzer keeps the input: an invariant does not hold.
    public static func violated(_ invariant: String, file: StaticString = #file, line: UInt = #line) -> Never {
        fatalError("fuzz invariant violated: \(invariant)", file: file, line: line)
    }
}

#if FUZZING
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ test: FuzzDriver.TestOneInput
) -> CInt
#endif
