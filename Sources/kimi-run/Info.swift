import KAF
import KimiCLI
import KimiRuntime

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List components, tensors, dtypes, sizes and bits per weight of a .kaf file.")

    @OptionGroup var model: ModelArgument
    @Flag(help: "Also list every tensor (name, dtype, shape, bytes).") var tensors = false
    @Flag(help: "Check every tensor's checksum (reads the whole file).") var verify = false
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let f = try model.open(verify: verify)
        let s = ModelSummary(f)
        if json {
            var j = s.json.objectValue ?? [:]
            if tensors {
                j["tensors"] = .array(
                    f.entries.map { e in
                        [
                            "name": .string(e.name), "dtype": .string(e.dtype.name),
                            "shape": .array(e.shape.map { .int(Int64($0)) }),
                            "offset": .int(Int64(e.offset)), "bytes": .int(Int64(e.storedSize)),
                        ]
                    })
            }
            if verify { j["verified"] = true }
            print(JSONValue.object(j).serialized())
            return
        }
        print(s.textReport(listTensors: tensors, verified: verify))
    }
}
