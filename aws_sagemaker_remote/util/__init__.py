"""Helpers for code that runs inside a job: Pipe-mode channels, RecordIO, augmented manifests.

Standard library only, so they work in any image the job runs in, and never
imported by ``import aws_sagemaker_remote``: a script pays for them only when it
imports them. Import the module you need:

* :mod:`aws_sagemaker_remote.util.pipes`: read a Pipe-mode channel's FIFOs
  ``<channel>_<epoch>`` epoch by epoch, group records, read augmented-manifest
  records; feed a FIFO (tests, local emulation).
* :mod:`aws_sagemaker_remote.util.recordio`: the RecordIO framing SageMaker uses
  for ``RecordWrapperType=RecordIO`` and the ``application/x-recordio-protobuf``
  content type, and a reader of the protobuf ``Record`` message.
* :mod:`aws_sagemaker_remote.util.fs`: small file helpers.
"""
