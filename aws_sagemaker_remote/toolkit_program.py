"""Script mode's ``sagemaker_program``: the launcher the image's toolkit runs.

With ``--sagemaker-entry=toolkit`` a training job starts the way SageMaker's
framework estimators start one: the image's own entry point (the
sagemaker-training toolkit's ``train``) downloads ``sagemaker_submit_directory``
(our code bundle, a ``.tar.gz`` in S3), unpacks it into ``/opt/ml/code`` and
runs ``sagemaker_program`` from there as ``python PROGRAM --key value ...``,
one pair per hyperparameter. The program is this file, shipped at the root
of the bundle as :data:`~aws_sagemaker_remote.container.TOOLKIT_PROGRAM`.

It ignores the toolkit's ``--key value`` arguments, which lose types, order and
repeated flags, and hands the script's exact argument list to the bootstrap
(:mod:`aws_sagemaker_remote.bootstrap`), so requirements, configuration,
argument mapping and the failure message behave as with our own entrypoint.
That list travels as JSON in the hyperparameter
:data:`~aws_sagemaker_remote.container.ARGUMENTS_HYPERPARAMETER`, read raw from
``hyperparameters.json``; when it does not fit there, that JSON names the
staged argument file instead, which the job gets in its ``code`` channel.

Standard library only: it runs inside the job, with whatever Python the image has.
"""
from __future__ import annotations

import json
import os
import sys
from typing import List, NoReturn, Optional, Sequence


def recorded_arguments() -> List[str]:
    """The script's argument list from ``hyperparameters.json`` (``/opt/ml`` paths moved when the
    local backend relocated it).

    :raises ValueError: the hyperparameter is missing or is not a JSON list of strings.
    """
    from .container import ARGUMENTS_HYPERPARAMETER, DEFAULT, ROOT_ENV, ContainerPaths

    path = ContainerPaths.from_env().hyperparameters
    try:
        with open(path, encoding="utf-8") as fh:
            hyperparameters = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    raw = hyperparameters.get(ARGUMENTS_HYPERPARAMETER) if isinstance(hyperparameters, dict) else None
    if raw is None:
        raise ValueError(f"{path} has no {ARGUMENTS_HYPERPARAMETER} hyperparameter: this job was not "
                         "rendered for script mode")
    try:
        arguments = json.loads(raw)
    except (TypeError, ValueError):
        arguments = None
    if not isinstance(arguments, list) or not all(isinstance(a, str) for a in arguments):
        raise ValueError(f"the {ARGUMENTS_HYPERPARAMETER} hyperparameter is not a JSON list of strings")
    root = os.environ.get(ROOT_ENV)
    return [DEFAULT.relocate(a, root) for a in arguments] if root else arguments


def main(unpack_dir: str, toolkit_arguments: Optional[Sequence[str]] = None) -> NoReturn:
    """Run the bootstrap on the bundle unpacked in ``unpack_dir`` with the recorded arguments."""
    from .bootstrap import LOG_PREFIX, main as bootstrap_main, write_failure

    try:
        arguments = recorded_arguments()
    except ValueError as exc:
        write_failure("training", str(exc))
        sys.stderr.write(f"{LOG_PREFIX} {exc}\n")
        sys.exit(1)
    if toolkit_arguments:
        sys.stderr.write(f"{LOG_PREFIX} script mode: the script gets its recorded arguments; the toolkit's "
                         f"{len(toolkit_arguments)} hyperparameter arguments are not passed on\n")
    bootstrap_main(unpack_dir, arguments)


if __name__ == "__main__":
    # run by the toolkit as /opt/ml/code/TOOLKIT_PROGRAM: the bundle's runtime is beside this file
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(_here, "runtime"))
    from aws_sagemaker_remote.toolkit_program import main as _main

    _main(_here, sys.argv[1:])
