"""Fuzzing: any bytes give either a value or ProtocolError, never another exception.

Three kinds of input per decoder: raw bytes (mostly rejected at the header),
structurally plausible messages (valid header, random body: reach the body
parsers), and mutations of valid messages (near misses).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_strategies import (
    negotiated_values,
    opcodes_and_negotiated,
    reply_cases,
    requests_for,
    struct_values,
)

from vufuse import protocol as p
from vufuse.protocol.structs import IN_HEADER, OUT_HEADER

FUZZ = settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
OPCODE_NUMBERS = st.one_of(st.sampled_from([int(op) for op in p.Opcode]), st.integers(0, 2**32 - 1))


def _decodes_or_protocol_error(decode: Any, *args: Any) -> Any:
    try:
        return decode(*args)
    except p.ProtocolError as error:
        assert isinstance(error, ValueError) and error.field
        return None


@st.composite
def mutations(draw: st.DrawFn, message: bytes) -> bytes:
    data = bytearray(message)
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "cut", "grow", "set"]))
        if action == "flip" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut" and data:
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif action == "grow":
            data += draw(st.binary(min_size=1, max_size=16))
        elif action == "set" and data:
            index = draw(st.integers(0, len(data) - 1))
            data[index] = draw(st.sampled_from([0, 0xFF, 0x2F, 0x7F]))
    return bytes(data)


def _fix_in_len(message: bytes) -> bytes:
    # keep header.len truthful so the mutation reaches the body parsers
    if len(message) < IN_HEADER.size:
        return message
    header = IN_HEADER.unpack(message)
    return IN_HEADER.pack(header._replace(len=len(message))) + message[IN_HEADER.size :]


def _fix_out_len(message: bytes) -> bytes:
    if len(message) < OUT_HEADER.size:
        return message
    header = OUT_HEADER.unpack(message)
    return OUT_HEADER.pack(header._replace(len=len(message))) + message[OUT_HEADER.size :]


# ------------------------------------------------------------------ requests


@FUZZ
@given(message=st.binary(max_size=400), negotiated=negotiated_values)
def test_request_decoder_on_raw_bytes(message: bytes, negotiated: p.Negotiated) -> None:
    _decodes_or_protocol_error(p.decode_request, message, negotiated)


@FUZZ
@given(
    opcode=OPCODE_NUMBERS,
    header=struct_values(p.InHeader),
    total_extlen=st.integers(0, 40),
    payload=st.binary(max_size=400),
    negotiated=negotiated_values,
)
def test_request_decoder_on_plausible_messages(
    opcode: int,
    header: p.InHeader,
    total_extlen: int,
    payload: bytes,
    negotiated: p.Negotiated,
) -> None:
    header = header._replace(len=40 + len(payload), opcode=opcode, total_extlen=total_extlen)
    message = IN_HEADER.pack(header) + payload
    request = _decodes_or_protocol_error(p.decode_request, message, negotiated)
    if request is not None:
        assert request.header.opcode == opcode


@FUZZ
@given(data=st.data())
def test_request_decoder_on_mutated_requests(data: st.DataObject) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated())
    message = p.encode_request(data.draw(requests_for(opcode, negotiated)), negotiated)
    mutated = data.draw(mutations(message))
    if data.draw(st.booleans()):
        mutated = _fix_in_len(mutated)
    _decodes_or_protocol_error(p.decode_request, mutated, negotiated)


# ------------------------------------------------------------------ replies


@FUZZ
@given(data=st.data(), message=st.binary(max_size=400))
def test_reply_decoder_on_raw_bytes(data: st.DataObject, message: bytes) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated())
    request = data.draw(requests_for(opcode, negotiated))
    _decodes_or_protocol_error(p.decode_reply, message, request, negotiated)


@FUZZ
@given(
    data=st.data(),
    error=st.sampled_from([0, 0, 0, -2, -511, -512, 1, 2**31 - 1]),
    payload=st.binary(max_size=600),
)
def test_reply_decoder_on_plausible_messages(
    data: st.DataObject, error: int, payload: bytes
) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated())
    request = data.draw(requests_for(opcode, negotiated))
    request = request._replace(header=request.header._replace(opcode=opcode))
    unique = request.header.unique
    message = OUT_HEADER.pack(p.OutHeader(16 + len(payload), error, unique)) + payload
    _decodes_or_protocol_error(p.decode_reply, message, request, negotiated)


@FUZZ
@given(data=st.data())
def test_reply_decoder_on_mutated_replies(data: st.DataObject) -> None:
    opcode, negotiated = data.draw(opcodes_and_negotiated(replies=True))
    request, body = data.draw(reply_cases(opcode, negotiated))
    request = request._replace(header=request.header._replace(opcode=opcode))
    message = p.encode_reply(request.header.unique, opcode, body, negotiated)
    mutated = data.draw(mutations(message))
    if data.draw(st.booleans()):
        mutated = _fix_out_len(mutated)
    _decodes_or_protocol_error(p.decode_reply, mutated, request, negotiated)


@FUZZ
@given(payload=st.binary(max_size=600))
def test_dirent_parsers(payload: bytes) -> None:
    _decodes_or_protocol_error(p.decode_dirents, payload)
    _decodes_or_protocol_error(p.decode_direntplus, payload)


# ------------------------------------------------------------------ notifications


@FUZZ
@given(message=st.binary(max_size=300))
def test_notification_decoder_on_raw_bytes(message: bytes) -> None:
    _decodes_or_protocol_error(p.decode_notification, message)


@FUZZ
@given(code=st.integers(-3, 12), payload=st.binary(max_size=300))
def test_notification_decoder_on_plausible_messages(code: int, payload: bytes) -> None:
    message = OUT_HEADER.pack(p.OutHeader(16 + len(payload), code, 0)) + payload
    _decodes_or_protocol_error(p.decode_notification, message)
