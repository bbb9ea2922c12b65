"""RecordIO framing and the ``Record`` protobuf message, in the standard library only.

SageMaker wraps each S3 object (or, for an augmented manifest, each attribute
of each line) in the RecordIO framing of MXNet when a channel has
``RecordWrapperType=RecordIO``, and the ``application/x-recordio-protobuf``
content type of its built-in algorithms uses the same framing. Each record is::

    uint32 magic = 0xCED7230A   (little-endian)
    uint32 length               (little-endian, bytes of data that follow)
    data                        (length bytes)
    padding                     (zero bytes up to a multiple of 4)

:func:`read_recordio` and :func:`write_recordio` read and write that framing
byte for byte as the SageMaker training toolkit does
(``sagemaker_training.recordio``), so the job needs neither the SageMaker SDK
nor MXNet. :func:`parse_record` decodes the protobuf message ``aialgs.data.Record``
(``record.proto`` of the SageMaker algorithms) that ``x-recordio-protobuf``
records carry, without the ``protobuf`` package.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Mapping, Optional, Union

__all__ = [
    "RECORDIO_MAGIC",
    "BytesValue",
    "Record",
    "Tensor",
    "parse_record",
    "read_recordio",
    "recordio_bytes",
    "write_recordio",
]

#: The magic number that starts every RecordIO record.
RECORDIO_MAGIC = 0xCED7230A

# Explicit little-endian: the toolkit packs with the native order ("I"), which is little-endian on every
# host SageMaker runs, and a reader on another machine must not depend on its own byte order.
_HEADER = struct.Struct("<II")


def _padding(length: int) -> int:
    return -length % 4


def _read_exact(stream: BinaryIO, count: int) -> bytes:
    """Read ``count`` bytes, looping over short reads (a FIFO opened unbuffered returns what is there)."""
    parts: list[bytes] = []
    got = 0
    while got < count:
        chunk = stream.read(count - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_recordio(stream: BinaryIO) -> Iterator[bytes]:
    """Yield the data of each RecordIO record of a binary stream, until its end.

    :param stream: a file, FIFO or socket opened for binary reading (buffered or
        not: short reads are completed).
    :returns: an iterator of ``bytes``, one per record, padding removed.
    :raises ValueError: the stream does not start a record with the RecordIO magic
        number, or ends inside a record (a cut-off file). The stream ending
        exactly between two records is the normal end.

    Same records as ``sagemaker.amazon.common.read_recordio`` of the SageMaker SDK,
    which the original project's demos imported; stricter on damaged input,
    which the SDK truncates silently.
    """
    index = 0
    while True:
        header = _read_exact(stream, _HEADER.size)
        if not header:
            return
        if len(header) < _HEADER.size:
            raise ValueError(f"RecordIO stream ends inside the header of record {index} "
                             f"({len(header)} of {_HEADER.size} bytes)")
        magic, length = _HEADER.unpack(header)
        if magic != RECORDIO_MAGIC:
            raise ValueError(f"RecordIO record {index} starts with 0x{magic:08X}, not the magic "
                             f"number 0x{RECORDIO_MAGIC:08X}: the stream is not RecordIO-wrapped")
        data = _read_exact(stream, length)
        if len(data) < length:
            raise ValueError(f"RecordIO stream ends inside record {index} ({len(data)} of {length} bytes)")
        pad = _padding(length)
        if pad and len(_read_exact(stream, pad)) < pad:
            raise ValueError(f"RecordIO stream ends inside the padding of record {index}")
        yield data
        index += 1


def write_recordio(stream: BinaryIO, data: bytes) -> int:
    """Write ``data`` as one RecordIO record; return the number of bytes written.

    :param stream: a binary file or FIFO open for writing.
    :param data: the record's payload (any bytes-like object shorter than 4 GiB).
    """
    payload = bytes(data)
    framed = recordio_bytes(payload)
    stream.write(framed)
    return len(framed)


def recordio_bytes(data: bytes) -> bytes:
    """One RecordIO record (header, data, padding) as bytes."""
    length = len(data)
    if length > 0xFFFFFFFF:
        raise ValueError(f"a RecordIO record holds at most 4 GiB - 1 bytes, got {length}")
    return _HEADER.pack(RECORDIO_MAGIC, length) + bytes(data) + b"\0" * _padding(length)


# --- the Record protobuf message --------------------------------------------------------------

@dataclass(frozen=True)
class Tensor:
    """A dense or sparse tensor of a :class:`Record` (``Float32Tensor``, ``Float64Tensor`` or ``Int32Tensor``).

    :param dtype: ``"float32"``, ``"float64"`` or ``"int32"``.
    :param values: the values; for a sparse tensor, the non-zero ones.
    :param keys: for a sparse tensor, the index of each value (empty when dense).
    :param shape: for a sparse tensor, its dense shape (empty when dense).
    """

    dtype: str
    values: tuple[int | float, ...] = ()
    keys: tuple[int, ...] = ()
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class BytesValue:
    """A ``Bytes`` value of a :class:`Record`: raw byte strings and their content type."""

    values: tuple[bytes, ...] = ()
    content_type: str = ""


#: A value of a record's ``features`` or ``label`` map; ``None`` when the message sets none.
Value = Optional[Union[Tensor, BytesValue]]


@dataclass(frozen=True)
class Record:
    """The ``aialgs.data.Record`` message carried by ``application/x-recordio-protobuf`` records.

    :param features: feature name -> value (SageMaker's writers use the name ``"values"``).
    :param label: label name -> value (likewise ``"values"``).
    :param uid: the record's id, ``""`` when unset.
    :param metadata: free text (often JSON), ``""`` when unset.
    :param configuration: free text, ``""`` when unset.
    """

    features: Mapping[str, Value] = field(default_factory=dict)
    label: Mapping[str, Value] = field(default_factory=dict)
    uid: str = ""
    metadata: str = ""
    configuration: str = ""


# wire types of the protobuf encoding
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("protobuf message ends inside a varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ValueError("protobuf varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one message; LEN values as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == _I32:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"protobuf wire type {wire} (field {number}) is not used by Record")
        if pos > len(buf):
            raise ValueError(f"protobuf message ends inside field {number}")
        yield number, wire, value


def _int32(raw: int) -> int:
    # int32 values are sign-extended to 64 bits on the wire
    raw &= 0xFFFFFFFF
    return raw - (1 << 32) if raw & 0x80000000 else raw


def _repeated_varints(wire: int, value: int | bytes) -> list[int]:
    # repeated scalars arrive packed (one LEN field) or one field per value; readers must accept both
    if isinstance(value, int):
        return [value]
    if wire != _LEN:
        raise ValueError(f"an integer field arrived with wire type {wire}: not a Record message")
    out = []
    pos = 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        out.append(item)
    return out


def _repeated_fixed(wire: int, value: int | bytes, fmt: str) -> list[float]:
    size = struct.calcsize(fmt)
    if wire == _VARINT or isinstance(value, int):
        raise ValueError(f"a {fmt} field arrived as a varint: not a Record message")
    if wire == _LEN and len(value) % size:
        raise ValueError(f"packed {fmt} field of {len(value)} bytes is not a multiple of {size}")
    return [item[0] for item in struct.iter_unpack(fmt, value)]


_TENSOR_FIELDS = {2: ("float32", "<f"), 3: ("float64", "<d"), 7: ("int32", None)}


def _tensor(dtype: str, fmt: str | None, buf: bytes) -> Tensor:
    values: list[int | float] = []
    keys: list[int] = []
    shape: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 1:
            if fmt is None:
                values.extend(_int32(v) for v in _repeated_varints(wire, value))
            else:
                values.extend(_repeated_fixed(wire, value, fmt))
        elif number == 2:
            keys.extend(_repeated_varints(wire, value))
        elif number == 3:
            shape.extend(_repeated_varints(wire, value))
    return Tensor(dtype=dtype, values=tuple(values), keys=tuple(keys), shape=tuple(shape))


def _bytes_value(buf: bytes) -> BytesValue:
    values: list[bytes] = []
    content_type = ""
    for number, wire, value in _fields(buf):
        if wire != _LEN:
            continue
        assert isinstance(value, bytes)
        if number == 1:
            values.append(value)
        elif number == 2:
            content_type = value.decode("utf-8")
    return BytesValue(values=tuple(values), content_type=content_type)


def _value(buf: bytes) -> Value:
    result: Value = None
    for number, wire, value in _fields(buf):
        if wire != _LEN:
            continue
        assert isinstance(value, bytes)
        if number in _TENSOR_FIELDS:
            dtype, fmt = _TENSOR_FIELDS[number]
            result = _tensor(dtype, fmt, value)  # a oneof: the last member set wins
        elif number == 9:
            result = _bytes_value(value)
    return result


def _map_entry(buf: bytes) -> tuple[str, Value]:
    key = ""
    value: Value = None
    for number, wire, item in _fields(buf):
        if wire != _LEN:
            continue
        assert isinstance(item, bytes)
        if number == 1:
            key = item.decode("utf-8")
        elif number == 2:
            value = _value(item)
    return key, value


def parse_record(data: bytes) -> Record:
    """Decode one serialised ``aialgs.data.Record`` message (the payload of one RecordIO record).

    :param data: the message bytes, e.g. one item of :func:`read_recordio` on an
        ``application/x-recordio-protobuf`` stream.
    :returns: a :class:`Record`; fields the message does not set keep their defaults.
    :raises ValueError: the bytes are not a well-formed protobuf message.

    Replaces ``Record().ParseFromString(data)`` of ``sagemaker.amazon.record_pb2``
    where the job has no ``protobuf`` package; unknown fields are skipped, as
    protobuf does.
    """
    features: dict[str, Value] = {}
    label: dict[str, Value] = {}
    text = {3: "", 4: "", 5: ""}
    for number, wire, value in _fields(bytes(data)):
        if wire != _LEN:
            continue
        assert isinstance(value, bytes)
        if number in (1, 2):
            key, item = _map_entry(value)
            (features if number == 1 else label)[key] = item  # a repeated map key: the last one wins
        elif number in text:
            text[number] = value.decode("utf-8")
    return Record(features=features, label=label, uid=text[3], metadata=text[4], configuration=text[5])
