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
from typing import Dict, List, Sequence, Tuple, Union

from .flags import Declaration, dir_flag
from .options import CommonOptions, flag_name

#: How many value tokens a flag takes: 1 (always), ``"?"`` (optional) or 0.
Arity = Union[int, str]


def generated_arity(decl: Declaration, options: CommonOptions) -> Dict[str, Arity]:
    """Every flag the job's command line replaces, with its arity (as :mod:`~aws_sagemaker_remote.flags`
    declares them: yes/no options take an optional value, every other generated flag one value)."""
    out: Dict[str, Arity] = {flag_name(f): "?" if f.metadata["boolean"] else 1 for f in fields(options)}
    for d in decl.path_decls():
        out[d.flag] = 1
    if decl.kind.outputs_have_locations:  # training outputs have no --NAME-s3 flag
        for d in decl.outputs:
            out[d.remote_flag] = 1
    for key, _ in decl.training_dirs:
        out[dir_flag(key)] = 1
    return out


def strip_flags(argv: Sequence[str], arity: Dict[str, Arity]) -> List[str]:
    """Remove the given long flags (and the values they consumed) from an argument list.

    Mirrors argparse: ``--flag=value`` is one token; ``--flag value`` takes the next
    token when the flag requires a value, or when its value is optional and the next
    token does not look like a flag. Everything else, and everything after ``--``,
    is kept verbatim and in order.
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
            continue
        out.append(token)
        i += 1
    return out


def user_arguments(argv: Sequence[str], decl: Declaration, options: CommonOptions) -> Tuple[str, ...]:
    """The user's own tokens of ``argv``: what the job's command line keeps as typed."""
    return tuple(strip_flags(argv, generated_arity(decl, options)))


def job_arguments(run: str, user: Sequence[str], mapped: Sequence[Tuple[str, str]]) -> Tuple[str, ...]:
    """The script's argument list inside the job: ``--sagemaker-run=RUN``, then each generated
    flag as ``--flag=value`` (so a value starting with ``-`` stays a value), then the user's tokens."""
    return tuple([f"--sagemaker-run={run}"] + [f"{flag}={value}" for flag, value in mapped] + list(user))
