"""Downloading a job's results into a folder: what may be written where, and the progress bar."""
from __future__ import annotations

import io
from pathlib import Path

import pytest

from aws_sagemaker_remote.download import Artifact, UnsafePath, download, safe_join, safe_relative
from aws_sagemaker_remote.errors import UsageError
from aws_sagemaker_remote.store import LocalStore


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("name", ["/etc/passwd", "C:/x", "a/../../b", "..", "", "./", "a\\..\\..\\b"])
def test_names_that_leave_the_folder_are_refused(name: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relative(name)


def test_names_inside_the_folder_are_kept_clean() -> None:
    assert safe_relative("a//b/./c.txt") == "a/b/c.txt"


def test_a_link_already_in_the_folder_does_not_lead_out(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePath, match="through a link"):
        safe_join(str(tmp_path / "target"), "link/x")


def _store_with_output(tmp_path: Path) -> LocalStore:
    store = LocalStore(str(tmp_path / "store"))
    store.put_bytes(b"x" * 5000, "s3://b/out/part-1")
    store.put_bytes(b"y" * 3000, "s3://b/out/deep/part-2")
    return store


def test_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    store = _store_with_output(tmp_path)
    terminal, pipe = Terminal(), io.StringIO()

    download(store, [Artifact("out", "s3://b/out")], str(tmp_path / "a"), progress_stream=terminal)
    download(store, [Artifact("out", "s3://b/out")], str(tmp_path / "b"), progress_stream=pipe)

    assert terminal.getvalue().startswith("\rdownload [")
    assert "7.8 KiB/7.8 KiB" in terminal.getvalue()
    assert pipe.getvalue() == ""
    assert (tmp_path / "b" / "out" / "deep" / "part-2").read_bytes() == b"y" * 3000


def test_a_folder_that_is_not_empty_is_refused_before_anything_is_fetched(tmp_path: Path) -> None:
    store = _store_with_output(tmp_path)
    (tmp_path / "a" / "out").mkdir(parents=True)
    (tmp_path / "a" / "out" / "mine.txt").write_text("keep")

    with pytest.raises(UsageError, match="--overwrite"):
        download(store, [Artifact("other", "s3://b/out"), Artifact("out", "s3://b/out")], str(tmp_path / "a"))

    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out"]
    assert [p.name for p in (tmp_path / "a" / "out").iterdir()] == ["mine.txt"]
