#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value that threads share, behind a pthread mutex; `withLock` as Synchronization's `Mutex` has it.
///
/// Palisade used `Mutex` until ThreadSanitizer had to pass: on Linux with Swift 6.3.1 TSan does not
/// see a contended `Mutex` as synchronization (four threads adding 1 to a `Mutex<Int>` 10,000 times
/// each get a "Swift access race" report and the right total, 40,000), while it intercepts
/// `pthread_mutex_lock` (the same program with a pthread mutex gets no report).
///
/// Uncontended, a `withLock` is 65 instructions against `Mutex`'s 14 (callgrind, the difference of
/// 100,000 and 200,000 locked increments, -O); a query takes a few locks, and its decision alone
/// is 54.7k instructions.
public final class Locked<Value>: @unchecked Sendable {
    // Allocated apart: a pthread mutex must not move. The value is reached through a pointer, so
    // `withLock` does not pay for Swift's dynamic exclusivity check on a class property, which
    // the mutex makes redundant: a nested `withLock` on one lock deadlocks before it could trap.
    private let value: UnsafeMutablePointer<Value>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(_ value: sending Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout sending Value) throws(Failure) -> sending Result) throws(Failure) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
