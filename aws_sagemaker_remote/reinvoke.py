"""The job's own command line: the user's arguments with every generated flag taken out.

The job runs the same script again, with the user's tokens exactly as typed and
the generated flags (paths, ``--sagemaker-*``) replaced by values that point into
the container. Which flags are generated, and how many value tokens each takes,
is known from the declaration and the option fields alone, so no parser (and
none of argparse's private state) is needed to rewrite the command line.
Standard library only.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .args import IN_JOB
from .flags import Declaration
from .options import CommonOptions, alias_flag, flag_name, takes_optional_value

#: How many value tokens a flag takes: 1 (always), ``"?"`` (optional) or 0.
Arity = Union[int, str]


def generated_arity(decl: Declaration, options: CommonOptions) -> Dict[str, Arity]:
    """Every flag the job's command line replaces, with its arity (as :mod:`~aws_sagemaker_remote.flags`
    declares them: yes/no options take an optional value, every other generated flag one value)."""
    out: Dict[str, Arity] = {}
    for f in fields(options):
        arity: Arity = "?" if takes_optional_value(f) else 1
        out[flag_name(f)] = arity
        for alias in options.alias_names(f.name):
            out[alias_flag(alias)] = arity
    for d in decl.path_decls():
        for flag in d.flags:
            out[flag] = 1
    if decl.kind.outputs_have_locations:  # training outputs have no --NAME-s3 flag
        for d in decl.outputs:
            for flag in d.remote_flags:
                out[flag] = 1
    for key, _ in decl.training_dirs:
        out[decl.dir_flag(key)] = 1
    return out


def strip_flags(argv: Sequence[str], arity: Dict[str, Arity], boundary: Optional[str] = None) -> List[str]:
    """Remove the given long flags (and the values they consumed) from an argument list.

    Mirrors argparse: ``--flag=value`` is one token; ``--flag value`` takes the next
    token when the flag requires a value, or when its value is optional and the next
    token does not look like a flag. Everything else, and everything after ``--``,
    is kept verbatim and in order.

    :param boundary: an option token (``--flag=value``) put where a removed flag ended the
        values of an earlier option: in ``--many a --sagemaker-wait=no b``, ``b`` is not a
        value of ``--many``, and without a flag between them it would become one.
    """
    out: List[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        name = token.split("=", 1)[0] if token.startswith("--") else None
        if name is not None and name in arity:
            takes = arity[name]
            if "=" in token or takes == 0:
                i += 1
            elif takes == "?":
                nxt = argv[i + 1] if i + 1 < len(argv) else None
                i += 2 if (nxt is not None and not nxt.startswith("-")) else 1
            else:
                i += 2
            if boundary and i < len(argv) and _ends_values(out, argv[i]) and out[-1] != boundary:
                out.append(boundary)
            continue
        out.append(token)
        i += 1
    return out


def _ends_values(kept: Sequence[str], following: str) -> bool:
    """Whether a flag between ``kept`` and ``following`` keeps ``following`` from being read as a
    value of an option in ``kept`` (one that takes several values, or an optional one)."""
    return not following.startswith("-") and any(t.startswith("-") and t != "-" for t in kept)


def user_arguments(argv: Sequence[str], decl: Declaration, options: CommonOptions) -> Tuple[str, ...]:
    """The user's own tokens of ``argv``: what the job's command line keeps as typed (with
    ``--sagemaker-run=job`` where a removed flag separated an option from the tokens after it)."""
    return tuple(strip_flags(argv, generated_arity(decl, options), boundary=f"--sagemaker-run={IN_JOB}"))


def job_arguments(run: str, user: Sequence[str], mapped: Sequence[Tuple[str, str]]) -> Tuple[str, ...]:
    """The script's argument list inside the job: ``--sagemaker-run=RUN``, then each generated
    flag as ``--flag=value`` (so a value starting with ``-`` stays a value), then the user's tokens."""
    return tuple([f"--sagemaker-run={run}"] + [f"{flag}={value}" for flag, value in mapped] + list(user))
