#!/usr/bin/env python3
"""Check that proto/llm_proxy.proto is wire-identical to vibectl 0.11.6's.

Run with the venv python of scripts/setup-python-peer (needs vibectl==0.11.6,
which ships grpcio-tools):

    $VENV/bin/python scripts/interop/check_proto.py [path/to/llm_proxy.proto]

Compiles our .proto with grpc_tools.protoc, strips what never reaches the
wire (file name, source comments, json_name, which protoc fills in but the
Python generator omits), and compares the FileDescriptorProto with the one
embedded in vibectl/proto/llm_proxy_pb2.py. Prints a JSON verdict; exit 0
when identical, 1 with a text diff otherwise.
"""

import difflib
import json
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

from vibectl.proto import llm_proxy_pb2


def strip(fdp: descriptor_pb2.FileDescriptorProto) -> None:
    fdp.ClearField("source_code_info")
    fdp.ClearField("name")

    def msg(m: descriptor_pb2.DescriptorProto) -> None:
        for f in m.field:
            f.ClearField("json_name")
        for n in m.nested_type:
            msg(n)

    for m in fdp.message_type:
        msg(m)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    proto = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.path.join(here, "..", "..", "proto", "llm_proxy.proto")
    )
    proto = os.path.abspath(proto)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "ours.pb")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{os.path.dirname(proto)}",
                f"--descriptor_set_out={out}",
                proto,
            ],
            check=True,
        )
        with open(out, "rb") as f:
            ours = descriptor_pb2.FileDescriptorSet.FromString(f.read()).file[0]
    theirs = descriptor_pb2.FileDescriptorProto.FromString(
        llm_proxy_pb2.DESCRIPTOR.serialized_pb
    )
    strip(ours)
    strip(theirs)
    same = ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )
    print(json.dumps({"proto": proto, "identical_to_0_11_6": same}))
    if not same:
        sys.stdout.writelines(
            difflib.unified_diff(
                str(theirs).splitlines(True),
                str(ours).splitlines(True),
                "vibectl-0.11.6",
                "ours",
            )
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
