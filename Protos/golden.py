#!/usr/bin/env python3
"""golden.py: encodes sample messages with Google's Python protobuf runtime (an implementation
independent of protobuf-c) and writes them as Swift byte arrays to
Tests/WireTests/PythonGoldenEncodings.swift; WireGoldenTests decodes them with the Wire layer,
compares the values it builds itself, and checks that Wire's encoding is byte-identical.

Needs `protoc` (Debian: protobuf-compiler) and the `protobuf` package (pip install protobuf).
Usage: python3 Protos/golden.py   (rerun only when the samples or the .proto change)
"""
import importlib
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "WireTests", "PythonGoldenEncodings.swift")


def load_module():
    tmp = tempfile.mkdtemp()
    subprocess.run(["protoc", f"--python_out={tmp}", "paratool.proto"], cwd=HERE, check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("paratool_pb2")


def samples(pb):
    weather = pb.ToolCall(name="weather.lookup", arguments_json='{"city":"Zürich","days":3}')
    translate = pb.ToolCall(name="翻訳", arguments_json='{"text":"🦜 \\"q\\"\\n"}')
    request = pb.ToolCallRequest(
        request_id="req-42", query="Wie wird das Wetter in Zürich? 天気",
        history=[pb.Step(calls=[weather, translate], observation="21.5 °C ☀️"), pb.Step()],
        candidate_tools=["weather.lookup", "翻訳", "calendar"],
        max_new_tokens=4294967295, deadline_unix_ms=1764000000123, top_n=0, mode=pb.MODE_CONTEXT_DOCS,
        max_calls=2, tool_choice="翻訳")
    minimal_request = pb.ToolCallRequest(request_id="r", query="q")
    action = pb.Action(
        request_id="req-42", calls=[weather], text="",
        weights=[pb.ToolWeight(tool="weather.lookup", weight=0.75, adapter_version="v000003"),
                 pb.ToolWeight(tool="翻訳", weight=0.25, adapter_version="v000001"),
                 pb.ToolWeight(tool="翻訳", weight=1, adapter_version="v000001", call=1)],
        model_id="Llama-3.2-1B-Instruct", status=pb.STATUS_UNKNOWN_TOOL,
        error=pb.Error(code="tool.unknown", message="no tool 'x' ✗"),
        timings=pb.PhaseTimings(queue_ms=0.25, gate_ms=1.5, prefill_ms=30.125, decode_ms=120.0, total_ms=151.875),
        force_closed=True)
    telemetry = pb.FlopsTelemetry(
        request_id="req-42", worker_id="worker-ä-1", prompt_tokens=1234, generated_tokens=56,
        base_linear=2470000000000, attention=12345678, lora=9876543, encoder=1, gate=18446744073709551615,
        total=18446744073709551614, context_docs_equivalent=1 << 63,
        timings=pb.PhaseTimings(queue_ms=1, gate_ms=2, prefill_ms=3, decode_ms=4, total_ms=10))
    trajectory = pb.Trajectory(
        id="traj-1", query="Book a table für 2 🍽", candidate_tools=["restaurant.book"],
        steps=[pb.Step(calls=[pb.ToolCall(name="restaurant.book", arguments_json='{"n":2}')], observation="ok")],
        outcome=pb.OUTCOME_SOLVED, source="served")
    update = pb.AdapterUpdate(
        tool="weather.lookup", version="v000003", uri="file:///store/weather.lookup/v000003",
        sha256="ab" * 32, stage="joint", created_unix_ms=1764000000000)
    spec = pb.ToolSpec(
        name="weather.lookup", description="Looks up the weather — any city.",
        parameters_json='{"type":"object","properties":{"city":{"type":"string"}}}')
    feedback = pb.Feedback(
        request_id="req-42", outcome=pb.OUTCOME_UNSOLVED,
        corrected_calls=[pb.ToolCall(name="weather.lookup", arguments_json='{"city":"Zürich","days":1}'), translate],
        source="agent:trip-planner ✈", created_unix_ms=1764000000456)
    # Call ids and per-call results, the opt-out flag and the requester; a trajectory naming its
    # requester; a forget request.
    with_ids = pb.ToolCallRequest(
        request_id="req-43", query="And in Oslo?",
        history=[pb.Step(calls=[pb.ToolCall(name="weather.lookup", arguments_json='{"city":"Zürich"}', id="call_1"),
                                pb.ToolCall(name="翻訳", arguments_json="{}", id="call_2")],
                         results=[pb.ToolResult(call_id="call_2", content="天気"),
                                  pb.ToolResult(call_id="call_1", content='{"temp":21.5}')])],
        do_not_log=True, source="agent:trip-planner ✈")
    requester = pb.Trajectory(id="traj-2", query="q", steps=[pb.Step()], source="served:w1", request_source="user:42")
    forget = pb.ForgetRequest(source="user:42", created_unix_ms=1764000000789)
    return [("toolCallRequest", request), ("requestWithCallIDs", with_ids), ("trajectoryWithRequester", requester),
            ("forgetRequest", forget), ("minimalToolCallRequest", minimal_request), ("action", action),
            ("flopsTelemetry", telemetry), ("trajectory", trajectory), ("adapterUpdate", update),
            ("toolSpec", spec), ("feedback", feedback)]


def swift_bytes(data):
    hexes = [f"0x{b:02X}" for b in data]
    lines = [", ".join(hexes[i:i + 16]) for i in range(0, len(hexes), 16)]
    return "[\n" + "".join(f"        {line},\n" for line in lines) + "    ]"


def main():
    pb = load_module()
    out = ["// PythonGoldenEncodings: encodings made by Google's Python protobuf runtime from the samples",
           "// in Protos/golden.py (generated by that script; rerun it instead of editing).",
           "enum PythonGolden {"]
    for name, message in samples(pb):
        out.append(f"    static let {name}: [UInt8] = {swift_bytes(message.SerializeToString(deterministic=True))}")
    out.append("}")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
