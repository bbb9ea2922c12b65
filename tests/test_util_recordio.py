"""RecordIO framing and the Record message, checked against the SageMaker training toolkit's own code."""
from __future__ import annotations

import io
import os
import struct
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from aws_sagemaker_remote.util.recordio import (
    RECORDIO_MAGIC,
    BytesValue,
    Record,
    Tensor,
    parse_record,
    read_recordio,
    recordio_bytes,
    write_recordio,
)


def framed(*payloads: bytes) -> bytes:
    out = io.BytesIO()
    for payload in payloads:
        write_recordio(out, payload)
    return out.getvalue()


@pytest.mark.parametrize("length", range(9))
def test_record_layout_is_magic_length_data_and_padding_to_four(length: int) -> None:
    data = bytes(range(1, length + 1))
    raw = recordio_bytes(data)
    assert raw[:4] == bytes.fromhex("0a23d7ce")  # 0xCED7230A, little-endian
    assert struct.unpack("<I", raw[4:8]) == (length,)
    assert raw[8:8 + length] == data
    assert len(raw) % 4 == 0 and set(raw[8 + length:]) <= {0}
    assert len(raw) - 8 - length < 4


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_round_trip(payloads: list) -> None:
    assert list(read_recordio(io.BytesIO(framed(*payloads)))) == payloads


def test_write_returns_bytes_written() -> None:
    out = io.BytesIO()
    assert write_recordio(out, b"abcde") == 16 == len(out.getvalue())


def test_empty_stream_has_no_records() -> None:
    assert list(read_recordio(io.BytesIO(b""))) == []


def test_wrong_magic_is_refused_with_the_record_index() -> None:
    raw = framed(b"ok") + struct.pack("<II", 0x12345678, 1) + b"x\0\0\0"
    records = read_recordio(io.BytesIO(raw))
    assert next(records) == b"ok"
    with pytest.raises(ValueError, match=r"record 1 starts with 0x12345678, not the magic number 0xCED7230A"):
        next(records)


@pytest.mark.parametrize(("cut", "where"), [(3, "header of record 1"), (12, "inside record 1"),
                                            (15, "padding of record 1")])
def test_cut_off_stream_is_refused(cut: int, where: str) -> None:
    raw = framed(b"first") + framed(b"second")  # record 1 starts at 16: header 8, data 6, padding 2
    with pytest.raises(ValueError, match=where):
        list(read_recordio(io.BytesIO(raw[:16 + cut])))


def test_short_reads_of_an_unbuffered_fifo_are_completed(tmp_path: Path) -> None:
    fifo = tmp_path / "chan_0"
    os.mkfifo(fifo)
    payloads = [b"a" * 5, b"", b"b" * 70, b"c" * 3]
    raw = framed(*payloads)

    def dribble() -> None:
        # a few bytes at a time, so reads see headers and bodies split across writes
        with open(fifo, "wb", buffering=0) as out:
            out.writelines(raw[start:start + 3] for start in range(0, len(raw), 3))

    writer = threading.Thread(target=dribble, daemon=True)
    writer.start()
    with open(fifo, "rb", buffering=0) as stream:
        assert list(read_recordio(stream)) == payloads
    writer.join(10)


def test_too_long_record_is_refused() -> None:
    class Huge:
        def __len__(self) -> int:
            return 1 << 32

    with pytest.raises(ValueError, match="at most 4 GiB"):
        recordio_bytes(Huge())  # type: ignore[arg-type]


# --- against the SageMaker training toolkit (sagemaker-training), the code that defines the format in jobs ---

def test_same_bytes_as_the_toolkit_writer_and_readable_by_its_reader() -> None:
    toolkit = pytest.importorskip("sagemaker_training.recordio")
    payloads = [b"", b"x", b"hello", b"\0" * 7, bytes(range(256))]
    theirs = io.BytesIO()
    for payload in payloads:
        toolkit._write_recordio(theirs, payload)
    assert framed(*payloads) == theirs.getvalue()
    assert list(toolkit._read_recordio(io.BytesIO(framed(*payloads)))) == payloads
    assert list(read_recordio(io.BytesIO(theirs.getvalue()))) == payloads
    assert toolkit._kmagic == RECORDIO_MAGIC


def test_dense_numpy_records_written_by_the_toolkit_parse() -> None:
    toolkit = pytest.importorskip("sagemaker_training.recordio")
    np = pytest.importorskip("numpy")
    array = np.array([[1.5, -2.25, 0.0], [3.0, 4.0, 5.5]], dtype="float32")
    labels = np.array([0.0, 1.0], dtype="float64")
    out = io.BytesIO()
    toolkit._write_numpy_to_dense_tensor(out, array, labels)
    records = [parse_record(data) for data in read_recordio(io.BytesIO(out.getvalue()))]
    assert [r.features["values"] for r in records] == [
        Tensor("float32", (1.5, -2.25, 0.0)), Tensor("float32", (3.0, 4.0, 5.5))]
    assert [r.label["values"] for r in records] == [Tensor("float64", (0.0,)), Tensor("float64", (1.0,))]


def test_sparse_int_records_written_by_the_toolkit_parse() -> None:
    toolkit = pytest.importorskip("sagemaker_training.recordio")
    np = pytest.importorskip("numpy")
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix(np.array([[0, -7, 0, 9], [2147483647, 0, 0, -2147483648]], dtype=int))
    out = io.BytesIO()
    toolkit._write_spmatrix_to_sparse_tensor(out, matrix, np.array([3, -4], dtype=int))
    records = [parse_record(data) for data in read_recordio(io.BytesIO(out.getvalue()))]
    assert records[0].features["values"] == Tensor("int32", (-7, 9), keys=(1, 3), shape=(4,))
    assert records[1].features["values"] == Tensor("int32", (2147483647, -2147483648), keys=(0, 3), shape=(4,))
    assert [r.label["values"] for r in records] == [Tensor("int32", (3,)), Tensor("int32", (-4,))]


def test_every_field_of_a_protobuf_record_parses() -> None:
    record_pb2 = pytest.importorskip("sagemaker_training.record_pb2")
    message = record_pb2.Record()
    message.features["values"].float64_tensor.values.extend([0.1, -1e300])
    message.features["image"].bytes.value.extend([b"\x89PNG", b""])
    message.features["image"].bytes.content_type = "image/png"
    message.features["ids"].int32_tensor.values.extend([-1, 0, 1])
    message.features["ids"].int32_tensor.shape.extend([3])
    message.features["empty"].float32_tensor.SetInParent()
    message.label["values"].float32_tensor.values.extend([0.5])
    message.uid = "rec-1"
    message.metadata = '{"source": "ünïcode"}'
    message.configuration = "cfg"
    parsed = parse_record(message.SerializeToString())
    assert parsed == Record(
        features={
            "values": Tensor("float64", (0.1, -1e300)),
            "image": BytesValue((b"\x89PNG", b""), "image/png"),
            "ids": Tensor("int32", (-1, 0, 1), shape=(3,)),
            "empty": Tensor("float32"),
        },
        label={"values": Tensor("float32", (0.5,))},
        uid="rec-1",
        metadata='{"source": "ünïcode"}',
        configuration="cfg",
    )


def test_an_empty_message_is_an_empty_record() -> None:
    assert parse_record(b"") == Record()


def test_unpacked_repeated_values_parse_like_packed_ones() -> None:
    # Record's repeated fields are declared packed, but protobuf readers must accept both encodings:
    # features {key: "v", value {float32_tensor {values: 1.0, values: 2.0 (one field each)}}}
    tensor = b"\x0d" + struct.pack("<f", 1.0) + b"\x0d" + struct.pack("<f", 2.0) + b"\x10\x05"
    value = b"\x12" + bytes([len(tensor)]) + tensor
    entry = b"\x0a\x01v" + b"\x12" + bytes([len(value)]) + value
    message = b"\x0a" + bytes([len(entry)]) + entry
    assert parse_record(message).features == {"v": Tensor("float32", (1.0, 2.0), keys=(5,))}


@pytest.mark.parametrize("junk", [b"\x0a\x05ab", b"\x80", b"\x0b", b"\x0a\x04\x12\x02\x12\x05"])
def test_malformed_messages_raise_value_error(junk: bytes) -> None:
    with pytest.raises(ValueError):
        parse_record(junk)
