import Foundation
import KAF
import Testing

@testable import KimiConvert
@testable import KimiRuntime

/// Speech output on the tiny release: the streamed answer equals the official offline
/// detokenization of the same codes, and real speech's codes detokenize to the right length.
@Suite(.serialized) struct SpeechAnswerTests {
    /// While the model generates, chunks go out as soon as a later code shows they are not the last;
    /// that must give exactly what kimia.py's detokenize_audio makes of the finished code list
    /// (first chunk, then chunks of the same size, the last one final), with the same noise.
    @Test func streamedSpeechEqualsTheOfficialChunking() throws {
        let kaf = try DetokenizerTests.kaf(.float(.f32))
        var o = SpeechAnswer.Options()
        o.maxSteps = 300
        o.noiseSeed = 7
        o.audio = Sampler(temperature: 0.8, topK: 10, seed: 3)
        (o.detokenizer.chunkTokens, o.detokenizer.firstChunkTokens, o.detokenizer.lookAheadTokens) = (4, 4, 1)
        o.detokenizer.odeSteps = 3
        let speech = try SpeechAnswer(file: kaf, threads: 2, options: o)
        var streamed: [Float] = []
        let r = try speech.speak("Hello there.") { streamed += $0 }
        #expect(r.codes.count > 8, "only \(r.codes.count) codes: too few chunks to test")
        #expect(streamed.count == r.codes.count * 1920 && r.samples == streamed.count)

        let d = try Detokenizer(file: kaf, threads: 2, settings: o.detokenizer)
        var noise = SeededNoise(seed: 7)
        var offline: [Float] = []
        var start = 0
        while start < r.codes.count {
            let end = min(r.codes.count, start + 4)
            try d.push(Array(r.codes[start ..< end]), isFinal: end == r.codes.count, noise: &noise) { offline += $0 }
            start = end
        }
        #expect(offline == streamed)
    }

    /// The runtime's VQ codes of an espeak-ng clip, detokenized by the tiny release and written as a
    /// WAV: 24 kHz mono, 1920 samples per code, read back as written (16-bit).
    @Test func realSpeechCodesRoundTrip() throws {
        let kaf = try DetokenizerTests.kaf(.float(.f32))
        let clip = try AudioInput.load(path: ModelSummaryTests.fixtures + "/audio/fox_22k.wav")
        let codes = try AudioEncoders(file: kaf, threads: 2).encode(clip.samples).codes
        #expect(codes.count == (clip.samples.count + 1279) / 1280)
        var s = Detokenizer.Settings()
        s.odeSteps = 4
        let d = try Detokenizer(file: kaf, threads: 2, settings: s)
        let path = NSTemporaryDirectory() + "roundtrip-\(UUID().uuidString).wav"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try WAVWriter(path: path)
        var noise = SeededNoise(seed: 1)
        var written: [Float] = []
        var start = 0
        while start < codes.count {
            let end = min(codes.count, start + 30)
            try d.push(Array(codes[start ..< end]), isFinal: end == codes.count, noise: &noise) {
                written += $0
                try w.write($0)
            }
            start = end
        }
        #expect(!FileManager.default.fileExists(atPath: path), "visible before finish")
        try w.finish()
        let back = try AudioInput.load(path: path, sampleRate: 24000)
        #expect(back.sourceRate == 24000 && back.sourceChannels == 1)
        #expect(back.samples.count == codes.count * d.samplesPerCode && d.samplesPerCode == 1920)
        let err = zip(back.samples, written).map { abs($0 - min(max($1, -1), 1)) }.max() ?? 1
        #expect(err <= 2.0 / 32767, "16-bit round trip: max |Δ| \(err)")
    }

    /// tts and talk let the idle component's weight pages go (the LLM's while a chunk is detokenized,
    /// the detokenizer's while the LLM runs): the answer is the same as with every page kept, and
    /// `releasePages` does unmap them (the mapping's resident size in /proc/self/smaps falls).
    @Test func releasingIdleWeightPagesChangesNothingAndUnmapsThem() throws {
        let kaf = try DetokenizerTests.kaf(.float(.f32))
        var o = SpeechAnswer.Options()
        o.maxSteps = 120
        o.audio = Sampler(temperature: 0.8, topK: 10, seed: 5)
        (o.detokenizer.chunkTokens, o.detokenizer.firstChunkTokens, o.detokenizer.lookAheadTokens) = (4, 4, 1)
        o.detokenizer.odeSteps = 3
        var answers: [[Float]] = []
        for resident in [false, true] {
            o.oneComponentResident = resident
            var samples: [Float] = []
            let r = try SpeechAnswer(file: kaf, threads: 2, options: o).speak("Hello there.") { samples += $0 }
            #expect(r.codes.count > 4, "only \(r.codes.count) codes: too few chunks to test")
            answers.append(samples)
        }
        #expect(!answers[0].isEmpty && answers[0] == answers[1])

        // A mapping of its own, so that no other test's reads land in it.
        let own = try KAFFile(path: kaf.path)
        var sum: UInt64 = 0
        for e in own.entries where e.component != "kaf" {
            let b = UnsafeRawBufferPointer(start: own.file.base + e.offset, count: e.storedSize)
            for i in stride(from: 0, to: b.count, by: 512) { sum &+= UInt64(b[i]) }
        }
        let before = try Self.residentKiB(of: own.file.base)
        own.releasePages(of: Set(own.entries.map(\.component)))
        let after = try Self.residentKiB(of: own.file.base)
        #expect(before >= 256 && after * 8 <= before, "resident \(before) KiB before, \(after) KiB after (sum \(sum))")
    }

    /// A large scratch block (a KV cache sized for the whole context) reads as zeros and holds memory
    /// only for the pages written (mincore on the block).
    @Test func largeScratchBlocksAreZeroAndResidentOnlyWhenWritten() throws {
        let arena = ScratchArena()
        let n = 64 << 20
        let p = arena.bytes(n)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        func residentKiB() -> Int {
            var v = [UInt8](repeating: 0, count: (n + page - 1) / page)
            #expect(mincore(p, n, &v) == 0)
            return v.reduce(0) { $0 + Int($1 & 1) } * page / 1024
        }
        #expect(residentKiB() < 1024)
        p.initializeMemory(as: UInt8.self, repeating: 1, count: 1 << 20)
        let written = residentKiB()
        #expect(written >= 1024 && written <= 8192, "\(written) KiB resident after writing 1 MiB")
        let tail = UnsafeRawBufferPointer(start: p + (1 << 20), count: n - (1 << 20))
        #expect(tail.allSatisfy { $0 == 0 } && p.load(as: UInt8.self) == 1)
    }

    /// Rss of the mapping starting at `base`, from /proc/self/smaps.
    static func residentKiB(of base: UnsafeRawPointer) throws -> Int {
        let start = String(UInt(bitPattern: base), radix: 16)
        var inside = false
        // Read whole through a FileHandle: procfs files report size 0.
        guard let h = FileHandle(forReadingAtPath: "/proc/self/smaps"), let data = try h.readToEnd() else {
            throw FormatError("/proc/self/smaps", "cannot read")
        }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit) {
                inside = line[..<dash].drop(while: { $0 == "0" }) == start
            } else if inside, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ")[1]) ?? -1
            }
        }
        throw FormatError("/proc/self/smaps", "no mapping at 0x\(start)")
    }
}
