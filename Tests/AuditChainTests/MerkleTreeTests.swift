import Testing
@testable import AuditChain

/// Known answers from the Certificate Transparency reference implementation (RFC 6962 test data):
/// a tree no other implementation agrees with proves nothing to anyone else.
@Suite struct MerkleTreeTests {
    static let leafData: [[UInt8]] = [
        [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
        [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
        [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
    ]
    static let roots = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
    static var leaves: [AuditHash] { leafData.map { RFC6962.leafHash($0) } }

    static func hashes(_ hex: [String]) -> [AuditHash] { hex.map { AuditHash(hex: $0)! } }

    @Test func rootsMatchTheReferenceForEverySize() {
        #expect(MerkleTree.root([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(MerkleFrontier().root == MerkleTree.root([]))
        var frontier = MerkleFrontier()
        for size in 1...8 {
            frontier.append(Self.leaves[size - 1])
            #expect(MerkleTree.root(Array(Self.leaves.prefix(size))).hex == Self.roots[size - 1], "size \(size)")
            #expect(frontier.root.hex == Self.roots[size - 1], "frontier size \(size)")
        }
    }

    // (leaf index, tree size, path) from the reference implementation's tests.
    static let proofs: [(UInt64, UInt64, [String])] = [
        (0, 1, []),
        (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]

    @Test func inclusionProofsMatchTheReference() {
        for (index, size, path) in Self.proofs {
            let leaves = Array(Self.leaves.prefix(Int(size)))
            let expected = Self.hashes(path)
            #expect(MerkleTree.inclusionProof(index: Int(index), leaves: leaves) == expected, "leaf \(index) of \(size)")
            let root = AuditHash(hex: Self.roots[Int(size) - 1])!
            #expect(MerkleTree.verifyInclusion(index: index, size: size, leaf: leaves[Int(index)], proof: expected, root: root))
        }
    }

    @Test func everyProofVerifiesAndNoAlteredOneDoes() {
        let leaves = (0..<37).map { RFC6962.leafHash([UInt8($0), UInt8($0 &* 7)]) }
        for size in 1...leaves.count {
            let tree = Array(leaves.prefix(size))
            let root = MerkleTree.root(tree)
            for index in 0..<size {
                let proof = MerkleTree.inclusionProof(index: index, leaves: tree)
                let leaf = tree[index]
                #expect(MerkleTree.verifyInclusion(index: UInt64(index), size: UInt64(size), leaf: leaf, proof: proof, root: root))
                // The probes of the CT reference tests: wrong index, wrong size, wrong leaf, wrong root.
                let i = UInt64(index), n = UInt64(size)
                var probes: [(UInt64, UInt64, AuditHash, AuditHash)] = [
                    (i + 1, n, leaf, root), (i ^ 2, n, leaf, root), (i, n * 2, leaf, root), (i, n / 2, leaf, root),
                    (i, n, RFC6962.leafHash(Array("WrongLeaf".utf8)), root), (i, n, leaf, RFC6962.emptyRoot),
                ]
                if i > 0 { probes.append((i - 1, n, leaf, root)) }
                for (badIndex, badSize, badLeaf, badRoot) in probes {
                    #expect(!MerkleTree.verifyInclusion(index: badIndex, size: badSize, leaf: badLeaf, proof: proof, root: badRoot),
                            "leaf \(index) of \(size) verified as leaf \(badIndex) of \(badSize)")
                }
                #expect(!MerkleTree.verifyInclusion(index: UInt64(index), size: UInt64(size), leaf: leaf, proof: proof + [root], root: root))
                if !proof.isEmpty {
                    #expect(!MerkleTree.verifyInclusion(index: UInt64(index), size: UInt64(size), leaf: leaf, proof: Array(proof.dropLast()), root: root))
                    var flipped = proof
                    var bytes = flipped[0].bytes
                    bytes[0] ^= 8
                    flipped[0] = AuditHash(bytes: bytes)!
                    #expect(!MerkleTree.verifyInclusion(index: UInt64(index), size: UInt64(size), leaf: leaf, proof: flipped, root: root))
                }
            }
        }
    }
}
