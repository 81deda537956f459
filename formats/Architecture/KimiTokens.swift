// The Kimi special tokens the prompt builder and the generation loop use, spelled once
// (docs/ARCHITECTURE.md §3.1). The converter stores the whole table of 421 names with their ids;
// the runtime looks these up by name in the file (runtime/Pipelines/KimiSpecials.swift).

/// Named as the official code's `extra_tokens` attributes (kimia_infer/utils/special_tokens.py);
/// each token is `<|im_` + that name + `|>`.
public enum KimiToken: CaseIterable, Sendable {
    case msg_end, media_begin, media_end
    case kimia_text_blank, kimia_text_eos, kimia_user_msg_start, kimia_assistant_msg_start
    case kimia_speech_ct_id, kimia_speech_ctd_id

    /// The token's text, e.g. `<|im_kimia_text_blank|>`.
    public var name: String { "<|im_\(self)|>" }
}
