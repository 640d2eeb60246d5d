/// The right edge of an RFC 6962 tree: the roots of its perfect subtrees, largest first. It is all
/// the writer needs to sign a root after every batch in O(log n) memory, without keeping the leaves.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: UInt64 = 0
    private var subtrees: [AuditHash] = []

    public init() {}

    public mutating func append(_ leaf: AuditHash) {
        var hash = leaf
        var size = self.size
        // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes.
        while size & 1 == 1 {
            hash = RFC6962.nodeHash(subtrees.removeLast(), hash)
            size >>= 1
        }
        subtrees.append(hash)
        self.size += 1
    }

    /// RFC 6962 splits at the largest power of two below n, so the root folds the subtrees right to left.
    public var root: AuditHash {
        guard var hash = subtrees.last else { return RFC6962.emptyRoot }
        for subtree in subtrees.dropLast().reversed() {
            hash = RFC6962.nodeHash(subtree, hash)
        }
        return hash
    }
}

public enum MerkleTree {
    /// MTH(D[n]) of RFC 6962 §2.1, from the leaf hashes.
    public static func root(_ leaves: ArraySlice<AuditHash>) -> AuditHash {
        switch leaves.count {
        case 0: return RFC6962.emptyRoot
        case 1: return leaves[leaves.startIndex]
        default:
            let split = leaves.startIndex + largestPowerOfTwo(below: leaves.count)
            return RFC6962.nodeHash(root(leaves[..<split]), root(leaves[split...]))
        }
    }

    public static func root(_ leaves: [AuditHash]) -> AuditHash { root(leaves[...]) }

    /// PATH(m, D[n]) of RFC 6962 §2.1.1: the siblings from the leaf up to the root.
    public static func inclusionProof(index: Int, leaves: ArraySlice<AuditHash>) -> [AuditHash] {
        precondition(index >= 0 && index < leaves.count, "leaf index outside the tree")
        if leaves.count == 1 { return [] }
        let k = largestPowerOfTwo(below: leaves.count)
        let split = leaves.startIndex + k
        if index < k {
            return inclusionProof(index: index, leaves: leaves[..<split]) + [root(leaves[split...])]
        }
        return inclusionProof(index: index - k, leaves: leaves[split...]) + [root(leaves[..<split])]
    }

    public static func inclusionProof(index: Int, leaves: [AuditHash]) -> [AuditHash] {
        inclusionProof(index: index, leaves: leaves[...])
    }

    /// The root a proof leads to (RFC 9162 §2.1.3.2), or nil if the proof cannot belong to a tree of
    /// that size (wrong length, index outside the tree).
    public static func rootFromInclusionProof(index: UInt64, size: UInt64, leaf: AuditHash, proof: [AuditHash]) -> AuditHash? {
        guard index < size else { return nil }
        var fn = index
        var sn = size - 1
        var hash = leaf
        for sibling in proof {
            if sn == 0 { return nil }
            if fn & 1 == 1 || fn == sn {
                hash = RFC6962.nodeHash(sibling, hash)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                hash = RFC6962.nodeHash(hash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 ? hash : nil
    }

    public static func verifyInclusion(index: UInt64, size: UInt64, leaf: AuditHash, proof: [AuditHash], root: AuditHash) -> Bool {
        rootFromInclusionProof(index: index, size: size, leaf: leaf, proof: proof) == root
    }

    static func largestPowerOfTwo(below n: Int) -> Int {
        precondition(n > 1)
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}
