import KAF

/// The pass/drift bands of the parity report, by the model's stored type, each with the evidence
/// behind it (formats/PARITY.md "Bands"). Anchors: ../shared/anchors.md §3.6 and §4.4 (llama.cpp's
/// KL divergence and perplexity scoreboards, GGUF audio-model WERs); our own bounds come from the
/// golden stages (formats/GOLDEN.md) and the quantizer's arithmetic.
public enum ParityBands {
    public typealias Band = ParityReport.Band

    enum Kind { case f32, f16, bf16, q8, q4 }

    static func kind(_ t: DType?) -> Kind {
        guard let t else { return .f32 }
        if t.isQuantized { return t.traits.quantBits == 8 ? .q8 : .q4 }
        return t == .f16 ? .f16 : t == .bf16 ? .bf16 : .f32
    }

    static func pick(
        _ t: DType?, f32: (Double, Double), half: (Double, Double), q8: (Double, Double), q4: (Double, Double)
    )
        -> (Double, Double)
    {
        switch kind(t) {
        case .f32: return f32
        case .f16, .bf16: return half
        case .q8: return q8
        case .q4: return q4
        }
    }

    /// Per-tensor SNR, by the tensor's own stored type.
    public static func tensorSNR(_ t: DType) -> Band {
        switch kind(t) {
        case .f32:
            return Band(
                .atLeast, pass: 100, drift: 80,
                evidence: "f32 holds a bf16/f16/f32 release exactly; below 100 dB only a conversion error is left")
        case .f16:
            return Band(
                .atLeast, pass: 60, drift: 50,
                evidence:
                    "f16 rounding (11-bit significand): ≈ 71 dB on normal values, less where tiny weights underflow")
        case .bf16:
            return Band(.atLeast, pass: 50, drift: 45, evidence: "bf16 rounding (8-bit significand): ≈ 59 dB")
        case .q8:
            return Band(
                .atLeast, pass: 35, drift: 30,
                evidence:
                    "int8 with an f16 scale per group: ≈ 46 dB on Gaussian rows of 32 (uniform-quantizer arithmetic); outlier rows lose a few dB"
            )
        case .q4:
            return Band(
                .atLeast, pass: 17, drift: 14,
                evidence:
                    "int4 with an f16 scale per group: ≈ 22 dB on Gaussian rows of 32, ≈ 19 dB for groups of 128 (uniform-quantizer arithmetic)"
            )
        }
    }

    static let klEvidence =
        "llama.cpp, LLaMA-3-8B vs FP16 on Wikitext-2: KL Q8_0 0.00136, Q4_0 0.0719, Q3_K_M 0.102, Q2_K 0.445 (anchors §4.4)"

    /// Mean KL divergence of a head, by the LLM linears' type.
    public static func klMean(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (1e-6, 1e-4), half: (1e-3, 5e-3), q8: (0.005, 0.02), q4: (0.1, 0.3))
        let why: String
        switch kind(t) {
        case .f32: why = "the same weights: only summation order differs"
        case .f16, .bf16: why = "16-bit rounding is finer than Q8_0; pass below Q8_0's value"
        case .q8: why = "pass up to ≈ 4× Q8_0, drift up to Q4_K_M's 0.0313"
        case .q4: why = "pass up to ≈ 1.4× Q4_0, drift below Q2_K"
        }
        return Band(.atMost, pass: p, drift: d, evidence: "\(why); \(klEvidence)")
    }

    /// Fraction of positions with the same most likely token.
    public static func sameTop1(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (0.999, 0.99), half: (0.98, 0.95), q8: (0.95, 0.9), q4: (0.85, 0.75))
        return Band(
            .atLeast, pass: p, drift: d,
            evidence:
                "our choice, consistent with the KL bands (llama-perplexity prints the same statistic, \"Same top p\")")
    }

    /// |PPL(model) / PPL(reference) − 1|.
    public static func perplexityChange(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (1e-4, 1e-3), half: (0.002, 0.01), q8: (0.01, 0.03), q4: (0.05, 0.15))
        return Band(
            .atMost, pass: p, drift: d,
            evidence:
                "PPL(Q)/PPL(fp16) − 1 measured by llama.cpp: LLaMA-v2-7B Q4_0 2.86 %, Mistral-7B Q4_K_M 1.08 %, Q6_K 0.18 % (anchors §3.6)"
        )
    }

    /// Mean cosine of the hidden state after a layer.
    public static func layerCosine(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (0.99999, 0.9999), half: (0.9999, 0.999), q8: (0.999, 0.99), q4: (0.98, 0.95))
        return Band(
            .atLeast, pass: p, drift: d,
            evidence:
                "the logits bounds of kimi-parity's golden stage lm (cosine f32 0.99999, 16-bit 0.9999, q8 0.9995, q4 0.98; formats/GOLDEN.md), applied per layer"
        )
    }

    /// Mean cosine of Whisper feature rows, by the encoder linears' type.
    public static func encoderCosine(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (0.99999, 0.9999), half: (0.9999, 0.999), q8: (0.999, 0.99), q4: (0.99, 0.95))
        return Band(
            .atLeast, pass: p, drift: d,
            evidence:
                "the whisper golden stage's per-frame bounds (formats/GOLDEN.md); openasr and llama.cpp keep audio encoders at Q8_0 or above (anchors §4.4)"
        )
    }

    /// Fraction of equal VQ codes, by the VQ encoder linears' type.
    public static func codeAgreement(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (1, 0.99), half: (0.98, 0.9), q8: (0.9, 0.75), q4: (0.75, 0.5))
        return Band(
            .atLeast, pass: p, drift: d,
            evidence:
                "f32 must give the same codes (stage vq); with rounded weights a code near a tie flips (our choice)")
    }

    public static let melFrontEnd = Band(
        .atMost, pass: 1e-5, drift: 1e-3,
        evidence: "both sides run the same front end; only the stored filters can differ")

    /// Mean |Δ| of the DiT's de-normalised mel with the same noise.
    public static func melL1(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (1e-4, 1e-3), half: (0.005, 0.02), q8: (0.01, 0.05), q4: (0.05, 0.2))
        return Band(
            .atMost, pass: p, drift: d,
            evidence:
                "the dit golden stage's max |Δ| bounds 1e-3 / 0.02 / 0.05 / 0.2 (formats/GOLDEN.md) as the drift limit of the mean"
        )
    }

    /// SNR of the vocoder's samples on the same mel, by the vocoder's convolution type.
    public static func vocoderSNR(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (60, 50), half: (40, 30), q8: (30, 20), q4: (30, 20))
        return Band(
            .atLeast, pass: p, drift: d,
            evidence:
                "the vocoder golden stage's SNR bounds (formats/GOLDEN.md; the tiny release at f16 measured 82.7 dB)")
    }

    /// Word error rate of the model's transcript against the reference's (plain Whisper files).
    public static func wordErrorRate(_ t: DType?) -> Band {
        let (p, d) = pick(t, f32: (0, 0.01), half: (0.02, 0.1), q8: (0.05, 0.15), q4: (0.15, 0.3))
        return Band(
            .atMost, pass: p, drift: d,
            evidence:
                "Voxtral-Small-24B GGUF, LibriSpeech WER: BF16 1.56 %, Q8_0 1.56 %, Q4_K_M 2.11 % (anchors §4.4); here against the reference's own transcript"
        )
    }

    /// Greedy sequences (text ids, audio codes): judged for f32 only, where they must be
    /// identical. A rounded model's greedy sequence leaves the reference's at its first near-tie,
    /// so for 16-bit and quantized files it is reported and the heads' KL is the judged measure
    /// (llama.cpp's practice).
    public static func greedyMatch(_ t: DType?) -> Band? {
        guard kind(t) == .f32 else { return nil }
        return Band(.atLeast, pass: 1, drift: 0.5, evidence: "the same weights give the same greedy sequence")
    }
}
