"""Coverage-guided fuzzing of every decoder with atheris (a longer run than CI's property tests).

    pip install atheris
    python fuzz/fuzz_decoders.py -max_total_time=600 -rss_limit_mb=2048

Each input is split by its first byte into one of the decoders; anything but
the decoder's own ProtocolError (or a refused JSONP/form body) is a crash.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

with atheris.instrument_imports():
    from tornad_io.engineio import codec as eio
    from tornad_io.engineio import legacy_codec
    from tornad_io.exceptions import ProtocolError
    from tornad_io.socketio import codec as sio
    from tornad_io.transports.engineio import _jsonp_body
    from tornad_io.websocket.frames import FrameParser


def one_input(data: bytes) -> None:
    if not data:
        return
    which, rest = data[0] % 7, data[1:]
    text = rest.decode("utf-8", "surrogateescape")  # keeps invalid bytes as lone surrogates
    try:
        if which == 0:
            eio.decode_payload(text)
        elif which == 1:
            eio.decode_packet(text if len(rest) % 2 else rest)
        elif which == 2:
            decoder = sio.Decoder(max_attachments=16)
            for part in text.split("\x00"):
                decoder.add(part.encode("utf-8", "surrogatepass") if part.startswith("b") else part)
        elif which == 3:
            legacy_codec.decode_payload(text, crlf_tolerant=True, strict=True)
        elif which == 4:
            legacy_codec.decode_payload(text)
        elif which == 5:
            eio.decode_payload(_jsonp_body(text))
        else:
            parser = FrameParser(max_size=4096)
            for i in range(0, len(rest), 7):  # in reads of 7 bytes, so frames span reads
                parser.feed(rest[i : i + 7])
    except ProtocolError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
