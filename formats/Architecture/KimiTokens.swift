// The Kimi special tokens the prompt builder and the generation loop use, spelled once
// (docs/ARCHITECTURE.md §3.1). The converter stores the whole table of 421 names with their ids;
// the runtime looks these up by name in the file (runtime/Pipelines/KimiSpecials.swift).

public enum KimiToken: String, CaseIterable, Sendable {
    case msgEnd = "<|im_msg_end|>"
    case mediaBegin = "<|im_media_begin|>"
    case mediaEnd = "<|im_media_end|>"
    case textBlank = "<|im_kimia_text_blank|>"
    case textEos = "<|im_kimia_text_eos|>"
    case userMsgStart = "<|im_kimia_user_msg_start|>"
    case assistantMsgStart = "<|im_kimia_assistant_msg_start|>"
    case speechCt = "<|im_kimia_speech_ct_id|>"
    case speechCtd = "<|im_kimia_speech_ctd_id|>"
}
