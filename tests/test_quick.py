"""The plain local run (``python script.py`` without SageMaker) takes the short path, and it is the full one.

Each equivalence test runs one declaration and one command line twice in this process:
through :func:`aws_sagemaker_remote.quick.plain_run` (asserting that it took over) and
through the full path (``Definition.prepare`` and ``api.dispatch``, what the entry functions
did before the short path existed). ``main`` records what it was called with; both runs must
record the same thing, raise the same exit code and print the same error line. Where the short
path must step aside (help, a ``--sagemaker-*`` flag, an option variable, a pyproject table,
SDK defaults files), the test checks that it returned :data:`~aws_sagemaker_remote.quick.FULL`
without calling ``main``, and the subprocess tests check what the user then sees.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pytest

from aws_sagemaker_remote import _option_table, api, quick


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path/proj/script.py`` with a ``data`` folder; the test runs in ``tmp_path``."""
    folder = tmp_path / "proj"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.txt").write_text("a\n", encoding="utf-8")
    (folder / "deps").mkdir()
    script = folder / "script.py"
    script.write_text("# the script whose folder is searched for pyproject.toml\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return folder


class Calls:
    """What ``main`` saw: its namespace (attributes in order) and the job variables set meanwhile."""

    def __init__(self) -> None:
        self.seen: List[Tuple[List[Tuple[str, Any]], Dict[str, Optional[str]]]] = []

    def main(self, args: argparse.Namespace) -> str:
        self.seen.append((list(vars(args).items()), {k: os.environ.get(k) for k in ("JOB_VAR", "OTHER")}))
        return "returned"


def declaration(project: Path, calls: Calls, **overrides: Any) -> api.Definition:
    keywords: Dict[str, Any] = {
        "inputs": {"input": str(project / "data")},
        "outputs": {"output": str(project / "out")},
        "dependencies": {"my_module": str(project / "deps")},
        "additional_arguments": [
            {"dest": "--min-count", "type": int, "default": 1},
            (["--lowercase", "-l"], {"action": "store_true"}),
            {"dest": "--name", "required": False, "choices": ["a", "b"]},
            {"name_or_flags": ["--tag"], "action": "append"},
        ],
        "description": "Count words.",
        "script": str(project / "script.py"),
        "base_job_name": "wordcount",
        "env": {"JOB_VAR": "from-keyword"},
        "instance_count": 2,
        "subnets": "a,b",
    }
    keywords.update(overrides)
    return api.define_processing(calls.main, **keywords)


def short(definition: api.Definition, argv: List[str]) -> Any:
    """What ``main`` returned, or ``("exit", code)``, through the short path, which must take over."""
    try:
        value = quick.plain_run(definition, argv, str(definition.script), api.run_locally)
    except SystemExit as exc:
        return ("exit", exc.code)
    assert value is not quick.FULL, "the short path stepped aside"
    return value


def full(definition: api.Definition, argv: List[str]) -> Any:
    decl, _, parser = definition.prepare()
    try:
        return api.dispatch(decl, parser, definition.main, argv)
    except SystemExit as exc:
        return ("exit", exc.code)


ARGVS = [
    [],
    ["--min-count", "3", "-l", "--name=b", "--tag", "x", "--tag", "y"],
    ["--input", "proj/data", "--output", "elsewhere", "--output-s3", "default"],
    ["--my-module", "proj/deps"],  # the hidden other spelling of a dependency flag
    ["--min-count", "many"],  # the script's own type refuses it: exit 2
    ["--name", "c"],  # not one of the choices
    ["--unknown"],
    ["positional"],
    ["--min-count"],  # no value
    ["--input", "proj/missing"],  # a path that does not exist: one UsageError line
    ["--output", "proj/data/inside"],  # an output inside an input
    ["--output-s3", "s3://Bad_Bucket/x"],  # an S3 location S3 refuses
    ["--", "--min-count", "2"],
]


def compare(project: Path, argv: List[str], capsys: pytest.CaptureFixture[str], **overrides: Any) -> Calls:
    """Run both paths; assert they return, raise, print and call ``main`` alike; the short path's calls."""
    fast_calls, full_calls = Calls(), Calls()
    try:
        fast = short(declaration(project, fast_calls, **overrides), argv)
    except Exception as exc:
        fast = (type(exc).__name__, str(exc))
    fast_out = capsys.readouterr()
    try:
        slow = full(declaration(project, full_calls, **overrides), argv)
    except Exception as exc:
        slow = (type(exc).__name__, str(exc))
    slow_out = capsys.readouterr()
    assert fast == slow
    assert fast_calls.seen == full_calls.seen
    assert (fast_out.out, fast_out.err) == (slow_out.out, slow_out.err)
    assert os.environ.get("JOB_VAR") is None  # set only while main ran
    return fast_calls


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) or "none" for a in ARGVS])
def test_the_short_path_is_the_full_path(project: Path, argv: List[str], capsys: pytest.CaptureFixture[str]) -> None:
    calls = compare(project, argv, capsys)
    if not argv:  # the namespace really has every --sagemaker-* attribute, keywords applied
        names = dict(calls.seen[0][0])
        assert (names["sagemaker_run"], names["sagemaker_base_job_name"], names["sagemaker_instance_count"],
                names["sagemaker_subnets"], names["sagemaker_env"]) == ("no", "wordcount", 2, ("a", "b"),
                                                                         (("JOB_VAR", "from-keyword"),))
        assert calls.seen[0][1] == {"JOB_VAR": "from-keyword", "OTHER": None}


KEYWORDS: List[Dict[str, Any]] = [
    {"runtime_seconds": 60},  # the first project's name of max_run
    {"env": ["JOB_VAR=x=y", "OTHER=2"]},
    {"env": None, "tags": {"team": "a"}},
    {"image": "my/image:1", "instance": "ml.c5.xlarge", "prefix": "p"},
    {"run": False, "wait": "no"},
    {"run": "no", "dry_run": False, "detach": "yes"},
    {"role": "", "volume_size": "12", "output_json": None},
    {"security_groups": ["sg-1", " ", "sg-2"]},
    {"outputs": {"output": "proj/out", "second": "proj/out2"}, "dependencies": None},
    {"additional_arguments": [("--x", {"default": "1"}), {"dest": "positional", "nargs": "?"}]},
]


@pytest.mark.parametrize("overrides", KEYWORDS, ids=[",".join(k) for k in KEYWORDS])
@pytest.mark.parametrize("argv", [[], ["--min-count", "2"]], ids=["none", "flag"])
def test_keywords_are_read_alike(project: Path, overrides: Dict[str, Any], argv: List[str],
                                 capsys: pytest.CaptureFixture[str]) -> None:
    compare(project, argv, capsys, **overrides)


def test_the_same_error_line_and_exit_code_for_the_scripts_own_flags(project: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Spelled out for one case, so the comparison above is known to compare something."""
    fast = short(declaration(project, Calls()), ["--min-count", "many"])
    err = capsys.readouterr().err
    assert fast == ("exit", 2)
    assert err == "script.py: error: argument --min-count: invalid int value: 'many' (see --help)\n"


@pytest.mark.parametrize("argv", [
    ["--help"], ["-h"], ["-lh"], ["--help=x"], ["--sagemaker-run=yes"], ["--sagemaker-run"],
    ["--sagemaker-dry-run"], ["--min-count", "2", "--sagemaker-instance", "ml.c5.xlarge"],
    ["--sagemaker-runtime-seconds", "60"],
])
def test_help_and_sagemaker_flags_take_the_full_path(project: Path, argv: List[str]) -> None:
    calls = Calls()
    assert quick.plain_run(declaration(project, calls), argv, str(project / "script.py"), api.run_locally) is quick.FULL
    assert calls.seen == []


@pytest.mark.parametrize("variable", ["AWS_SAGEMAKER_REMOTE_INSTANCE", "AWS_SAGEMAKER_REMOTE_RUN",
                                      "AWS_SAGEMAKER_REMOTE_RUNTIME_SECONDS", "AWS_SAGEMAKER_REMOTE_IN_JOB",
                                      "SAGEMAKER_USER_CONFIG_OVERRIDE", "SAGEMAKER_ADMIN_CONFIG_OVERRIDE"])
def test_an_option_variable_takes_the_full_path(project: Path, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "")  # set at all, even empty
    calls = Calls()
    assert quick.plain_run(declaration(project, calls), [], str(project / "script.py"), api.run_locally) is quick.FULL
    assert calls.seen == []


def test_other_variables_of_ours_keep_the_short_path(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``AWS_SAGEMAKER_REMOTE_HOME`` (set by every test) and the like are no option."""
    assert os.environ.get("AWS_SAGEMAKER_REMOTE_HOME")
    monkeypatch.setenv("AWS_SAGEMAKER_REMOTE_OPT_ML", "/nowhere")
    assert short(declaration(project, Calls()), []) == "returned"


@pytest.mark.parametrize("content, full_path", [
    ("[tool.aws-sagemaker-remote]\nrun = 'local'\n", True),
    ("[tool.aws-sagemaker-remote.processing]\ninstance = 'ml.c5.xlarge'\n", True),
    ("[tool.aws-sagemaker-remote]\n", True),  # an empty table is still the one the full path reads
    ("[tool.aws-sagemaker-remote\n", True),  # not TOML: the full path reports it
    ("[project]\nname = 'x'\ndependencies = ['aws-sagemaker-remote']\n", False),  # named, not configured
    ("[project]\nname = 'x'\n", False),
])
def test_a_pyproject_table_takes_the_full_path(project: Path, content: str, full_path: bool) -> None:
    (project.parent / "pyproject.toml").write_text(content, encoding="utf-8")  # above the script's folder
    calls = Calls()
    value = quick.plain_run(declaration(project, calls), [], str(project / "script.py"), api.run_locally)
    assert (value is quick.FULL) == full_path
    assert calls.seen == ([] if full_path else calls.seen[:1])


def test_an_sdk_config_file_takes_the_full_path(project: Path, tmp_path: Path) -> None:
    user = Path(os.environ["XDG_CONFIG_HOME"]) / "sagemaker"
    user.mkdir(parents=True)
    (user / "config.yaml").write_text("SchemaVersion: '1.0'\n", encoding="utf-8")
    assert quick.plain_run(declaration(project, Calls()), [], str(project / "script.py"), api.run_locally) is quick.FULL


@pytest.mark.parametrize("overrides", [
    {"run": "yes"}, {"run": "local"}, {"dry_run": True}, {"export_ack": "job.yaml"}, {"export_kfp": "c.yaml"},
    {"not_an_option": 1},  # the full path refuses it
    {"instance_count": "x"},  # a bad value: the full path reports it
    {"wait": None},  # None is no yes/no: the full path reports it
    {"max_wait": 60},  # a training option
    {"store": "local"},  # parsed by options.py: not the short path's to read
    {"inputs": {"input": "proj/data", "code": "proj/data"}},  # a reserved name
    {"inputs": {"1bad": "proj/data"}},
    {"outputs": {"input": "proj/out"}},  # one name twice
    {"additional_arguments": [{"dest": "--input"}]},  # the script declares a path flag itself: adopted
    {"additional_arguments": [{"dest": "--sagemaker-instance"}]},
    {"additional_arguments": [{"dest": "--a", "dest_": 1}]},
    {"additional_arguments": [{"dest": "--verbose", "action": "store_true"},
                              {"name_or_flags": ["--quiet"], "dest": "verbose", "action": "store_false"}]},
    {"argparse_callback": lambda parser: None},
    {"inputs": {"x_s3": "proj/data"}, "outputs": {"x": "proj/out"}},  # --x-s3 writes args.x_s3 twice
    {"inputs": {"sagemaker_role": "proj/data"}},  # args.sagemaker_role is the option's
    {"additional_arguments": [{"dest": "--manual", "action": "help"}]},  # would print the short parser's help
    {"additional_arguments": [{"dest": "--own", "action": type("Own", (argparse.Action,), {
        "__call__": lambda self, parser, namespace, values, option_string=None: None})}]},
])
def test_anything_else_takes_the_full_path(project: Path, overrides: Dict[str, Any]) -> None:
    calls = Calls()
    assert quick.plain_run(declaration(project, calls, **overrides), [], str(project / "script.py"),
                           api.run_locally) is quick.FULL
    assert calls.seen == []


def test_training_and_typed_arguments_take_the_full_path(project: Path) -> None:
    calls = Calls()
    training = api.define_training(calls.main, inputs={"train": str(project / "data")}, script=str(project / "script.py"))
    assert quick.plain_run(training, [], str(project / "script.py"), api.run_locally) is quick.FULL
    assert calls.seen == []


def test_the_option_table_is_generated_from_options_py() -> None:
    """``python -m aws_sagemaker_remote.quick`` rewrites it; a stale one only costs the short path."""
    assert Path(_option_table.__file__).read_text(encoding="utf-8") == quick.table_source(), \
        "options.py or values.py changed: run python -m aws_sagemaker_remote.quick to rewrite _option_table.py"


def test_constants_match_the_modules_they_stand_for() -> None:
    from aws_sagemaker_remote import container, sources

    assert quick.IN_JOB_ENV == container.IN_JOB_ENV
    assert quick.CODE_CHANNEL == container.CODE_CHANNEL
    assert quick.ENV_PREFIX == sources.ENV_PREFIX
    assert quick.PYPROJECT_TABLE == sources.PYPROJECT_TABLE
    assert (quick.ADMIN_OVERRIDE_ENV, quick.USER_OVERRIDE_ENV) == (sources.ADMIN_OVERRIDE_ENV,
                                                                   sources.USER_OVERRIDE_ENV)


# --- what a user sees, in a fresh interpreter --------------------------------------------------------

def test_the_demo_s_errors_and_help_are_unchanged(tmp_path: Path, demo_dir: Path, run_script: Any,
                                                  one_error_line: Any) -> None:
    bad = run_script(demo_dir / "wordcount.py", "--output", str(tmp_path / "o"), "--min-count", "x")
    assert bad.returncode == 2
    assert one_error_line(bad.stderr, "--min-count", "invalid int value") == \
        "wordcount.py: error: argument --min-count: invalid int value: 'x' (see --help)"
    shown = run_script(demo_dir / "wordcount.py", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--sagemaker-run" in shown.stdout and "--min-count" in shown.stdout


def test_a_pyproject_table_still_reaches_the_script(tmp_path: Path, run_script: Any, one_error_line: Any) -> None:
    """A table next to the script is read on a plain run too (here: a key that is not ours, exit 2)."""
    (tmp_path / "pyproject.toml").write_text("[tool.aws-sagemaker-remote]\nbogus = 1\n", encoding="utf-8")
    script = tmp_path / "script.py"
    script.write_text("from aws_sagemaker_remote import sagemaker_processing_main\n"
                      "sagemaker_processing_main(main=lambda args: print('main ran'))\n", encoding="utf-8")
    done = run_script(script)
    assert done.returncode == 2
    assert "main ran" not in done.stdout
    one_error_line(done.stderr, "unknown key tool.aws-sagemaker-remote.bogus")


def test_an_option_variable_still_reaches_main(tmp_path: Path, run_script: Any) -> None:
    script = tmp_path / "script.py"
    script.write_text("from aws_sagemaker_remote import sagemaker_processing_main\n"
                      "sagemaker_processing_main(main=lambda args: print('INSTANCE=' + args.sagemaker_instance))\n",
                      encoding="utf-8")
    done = run_script(script, env={"AWS_SAGEMAKER_REMOTE_INSTANCE": "ml.c5.xlarge"})
    assert done.returncode == 0, done.stderr
    assert "INSTANCE=ml.c5.xlarge" in done.stdout


@pytest.mark.parametrize("edited", [None, "options.py", "values.py"],
                         ids=["as generated", "options.py edited since", "values.py edited since"])
def test_a_stale_table_only_costs_the_short_path(tmp_path: Path, repo_root: Path, run_script: Any,
                                                 edited: Optional[str]) -> None:
    """A copy of the package whose ``options.py`` or ``values.py`` (the converters of the table's
    defaults) no longer matches the table runs the full path, alike."""
    import shutil

    copy = tmp_path / "site"
    shutil.copytree(repo_root / "aws_sagemaker_remote", copy / "aws_sagemaker_remote",
                    ignore=shutil.ignore_patterns("__pycache__"))
    if edited:
        with open(copy / "aws_sagemaker_remote" / edited, "a", encoding="utf-8") as fh:
            fh.write("\n# a change here, the table not rewritten yet\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\n"
        "from aws_sagemaker_remote import sagemaker_processing_main\n"
        "def main(args):\n"
        "    print('FULL' if 'aws_sagemaker_remote.options' in sys.modules else 'SHORT')\n"
        "    print(sorted(vars(args).items()))\n"
        "sagemaker_processing_main(main=main, additional_arguments=[{'dest': '--n', 'type': int}],\n"
        "                          base_job_name='job')\n", encoding="utf-8")
    done = run_script(script, "--n", "3", env={"PYTHONPATH": str(copy)})
    assert done.returncode == 0, done.stderr
    path, namespace = done.stdout.splitlines()
    assert path == ("FULL" if edited else "SHORT")
    assert "('n', 3)" in namespace and "('sagemaker_base_job_name', 'job')" in namespace
    reference = run_script(script, "--n", "3")  # the checkout itself
    assert reference.stdout.splitlines()[1] == namespace
