/// XXH64 (Yann Collet's xxHash, 64-bit variant): the .kaf checksum. Fast enough to hash a
/// multi-GB file at memory speed; streaming so the writer hashes each tensor as it goes.
public struct XXH64 {
    private static let p1: UInt64 = 0x9E3779B185EBCA87
    private static let p2: UInt64 = 0xC2B2AE3D27D4EB4F
    private static let p3: UInt64 = 0x165667B19E3779F9
    private static let p4: UInt64 = 0x85EBCA77C2B2AE63
    private static let p5: UInt64 = 0x27D4EB2F165667C5

    private var v1, v2, v3, v4: UInt64
    private let seed: UInt64
    private var total: UInt64 = 0
    private var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var buffered = 0

    public init(seed: UInt64 = 0) {
        self.seed = seed
        v1 = seed &+ XXH64.p1 &+ XXH64.p2
        v2 = seed &+ XXH64.p2
        v3 = seed
        v4 = seed &- XXH64.p1
    }

    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        var a = acc &+ input &* p2
        a = (a << 31) | (a >> 33)
        return a &* p1
    }

    @inline(__always) private static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        let v = round(0, val)
        return (acc ^ v) &* p1 &+ p4
    }

    public mutating func update(_ data: UnsafeRawBufferPointer) {
        guard var p = data.baseAddress, data.count > 0 else { return }
        var n = data.count
        total &+= UInt64(n)
        // Fill a partial stripe first.
        if buffered > 0 {
            let take = min(32 - buffered, n)
            withUnsafeMutableBytes(of: &buffer) { b in
                (b.baseAddress! + buffered).copyMemory(from: p, byteCount: take)
            }
            buffered += take; p += take; n -= take
            if buffered < 32 { return }
            var stripe = buffer
            withUnsafeBytes(of: &stripe) { b in consumeStripes(b.baseAddress!, 32) }
            buffered = 0
        }
        let whole = n & ~31
        if whole > 0 { consumeStripes(p, whole); p += whole; n -= whole }
        if n > 0 {
            withUnsafeMutableBytes(of: &buffer) { b in b.baseAddress!.copyMemory(from: p, byteCount: n) }
            buffered = n
        }
    }

    @inline(__always) private mutating func consumeStripes(_ p: UnsafeRawPointer, _ n: Int) {
        var a = v1, b = v2, c = v3, d = v4
        var o = 0
        while o < n {
            a = XXH64.round(a, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
            b = XXH64.round(b, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o + 8, as: UInt64.self)))
            c = XXH64.round(c, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o + 16, as: UInt64.self)))
            d = XXH64.round(d, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o + 24, as: UInt64.self)))
            o += 32
        }
        v1 = a; v2 = b; v3 = c; v4 = d
    }

    public func finalize() -> UInt64 {
        typealias X = XXH64
        var h: UInt64
        if total >= 32 {
            h = ((v1 << 1) | (v1 >> 63)) &+ ((v2 << 7) | (v2 >> 57)) &+ ((v3 << 12) | (v3 >> 52)) &+ ((v4 << 18) | (v4 >> 46))
            h = X.merge(h, v1); h = X.merge(h, v2); h = X.merge(h, v3); h = X.merge(h, v4)
        } else {
            h = seed &+ X.p5
        }
        h &+= total
        var buf = buffer
        let n = buffered
        withUnsafeBytes(of: &buf) { b in
            let p = b.baseAddress!
            var o = 0
            while o + 8 <= n {
                let k = X.round(0, UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
                h ^= k
                h = ((h << 27) | (h >> 37)) &* X.p1 &+ X.p4
                o += 8
            }
            if o + 4 <= n {
                h ^= UInt64(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))) &* X.p1
                h = ((h << 23) | (h >> 41)) &* X.p2 &+ X.p3
                o += 4
            }
            while o < n {
                h ^= UInt64(p.load(fromByteOffset: o, as: UInt8.self)) &* X.p5
                h = ((h << 11) | (h >> 53)) &* X.p1
                o += 1
            }
        }
        h ^= h >> 33; h &*= X.p2
        h ^= h >> 29; h &*= X.p3
        h ^= h >> 32
        return h
    }

    public static func hash(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var x = XXH64(seed: seed)
        x.update(data)
        return x.finalize()
    }
}
