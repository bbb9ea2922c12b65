"""One input shape: a file input is a file path in every mode, a folder input a folder.

A local file input gives the script the file's path: here its own path, in the
job ``<input folder>/<file name>`` (SageMaker puts the object there). An
``s3://`` input gives the same shapes by this rule:

* ``s3://bucket/key`` **names one file** when an object has exactly that key and
  no other object's key starts with it (``s3://b/data/train.csv`` with only
  ``data/train.csv`` under it). The script gets the file's path: the cached
  download in a plain run, ``<input folder>/train.csv`` in the job.
* Anything else is a **folder**: a key ending in ``/``, a bucket, or a prefix that
  several objects share (``s3://b/data/train.csv`` beside ``data/train.csv.bak``:
  SageMaker downloads both, so the script gets the folder holding them).

Whether one object has the key is only known by asking the store, so plan
writes the folder into the job's command line and staging completes it (one
``HEAD`` and, when that finds the object, one ``LIST``; no request for a key
ending in ``/``). A dry run with S3 access shows the completed command line; one
without S3 cannot tell and shows the folder. Only ``S3Prefix`` inputs read in
``File`` or ``FastFile`` mode have a file shape: a ``Pipe`` input is a stream and
a manifest names many objects.
"""
from __future__ import annotations

import dataclasses
import posixpath
import sys
from typing import Dict, Iterable, Optional, TextIO

from .spec import InputChannel, JobSpec
from .store import Store, split_uri


def one_object_name(uri: str, listed: Iterable[str]) -> Optional[str]:
    """The file name when ``uri`` names one object by the rule above, given the URIs of every
    object under it (folder marker keys ending in ``/`` are not objects); else None."""
    _, key = split_uri(uri)
    if not key or key.endswith("/"):
        return None
    objects = [found for found in listed if not found.endswith("/")]
    return posixpath.basename(key) if objects == [uri] else None


def stored_file_name(store: Store, uri: str) -> Optional[str]:
    """:func:`one_object_name`, asking ``store``: ``HEAD`` first, so a prefix of many objects is
    never listed just to find it is a folder."""
    _, key = split_uri(uri)
    if not key or key.endswith("/") or store.head(uri) is None:
        return None
    return one_object_name(uri, (found for found, _size in store.list(uri)))


def may_be_file(channel: InputChannel) -> bool:
    """Whether an ``s3://`` input's shape depends on what the store holds."""
    return (channel.is_s3 and channel.s3_data_type == "S3Prefix" and channel.mode != "Pipe"
            and not channel.source.endswith("/"))


def with_input_shapes(spec: JobSpec, store: Store, err: Optional[TextIO] = None) -> JobSpec:
    """``spec`` with each ``s3://`` input that names one object given as its file path inside the job
    (in the input channel, the job's command line and the hyperparameters shown on the console).

    An object this machine may not read (the job's role may) keeps the folder shape, with a
    note on ``err``: the launch does not depend on the launcher's own access to the inputs.
    """
    tokens: Dict[str, str] = {}  # --flag=folder -> --flag=folder/file
    values: Dict[str, str] = {}  # folder -> folder/file
    inputs = []
    for channel in spec.inputs:
        name = None
        if may_be_file(channel):
            try:
                name = stored_file_name(store, channel.source)
            except Exception as exc:  # noqa: BLE001 - botocore's errors, without importing botocore here
                (err or sys.stderr).write(f"cannot look up {channel.source} ({exc}); {channel.flag} is "
                                          f"its folder in the job\n")
        if name is not None and channel.flag is not None:
            value = channel.container_path.rstrip("/") + "/" + name
            tokens[f"{channel.flag}={channel.container_value}"] = f"{channel.flag}={value}"
            values[channel.container_value] = value
            channel = dataclasses.replace(channel, container_value=value)
        inputs.append(channel)
    if not values:
        return spec
    arguments = list(spec.arguments)
    for index, token in enumerate(arguments):
        # the generated flags come first, as --flag=value (reinvoke.job_arguments); the user's own
        # tokens after them are left as typed
        if not token.startswith("--"):
            break
        if token in tokens:
            arguments[index] = tokens.pop(token)
    training = spec.training
    if training is not None:
        training = dataclasses.replace(training, hyperparameters=tuple(
            (key, values.get(value, value)) for key, value in training.hyperparameters))
    return dataclasses.replace(spec, inputs=tuple(inputs), arguments=tuple(arguments), training=training)
