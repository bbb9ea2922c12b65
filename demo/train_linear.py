"""Fit y = w*x + b with plain gradient descent: a dependency-free training demo.

    python demo/train_linear.py                          # here
    python demo/train_linear.py --sagemaker-run=local    # the same Training job, on this machine
    python demo/train_linear.py --sagemaker-run=yes --sagemaker-role=MyRole \
        --sagemaker-image=<an image with python3>        # on SageMaker

It shows what a training script needs:

* the ``train`` channel (every ``*.csv`` under it; with several instances each
  host gets its own shard of the files),
* a metric per epoch (``loss: 0.123``) that SageMaker and the watcher pick up,
* a checkpoint after every epoch in ``--checkpoint-dir``, and a resume from the
  last one on start (managed spot restarts, or a new run after an interruption),
* the model in ``--model-dir`` (written by the first host only) and a small
  report in ``--output-dir``.
"""
import csv
import glob
import json
import os
import sys

from aws_sagemaker_remote import PathArgument, sagemaker_training_main

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKPOINT = "checkpoint.json"


def host_identity():
    """This host's name and every host's name (SM_CURRENT_HOST / SM_HOSTS in a job)."""
    current = os.environ.get("SM_CURRENT_HOST", "local")
    hosts = json.loads(os.environ.get("SM_HOSTS", "[]")) or [current]
    return current, hosts


def read_rows(folder):
    files = sorted(glob.glob(os.path.join(folder, "**", "*.csv"), recursive=True))
    rows = []
    for path in files:
        with open(path, newline="") as fh:
            rows.extend((float(r["x"]), float(r["y"])) for r in csv.DictReader(fh))
    return files, rows


def load_checkpoint(folder):
    path = os.path.join(folder, CHECKPOINT)
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    return {"epoch": 0, "w": 0.0, "b": 0.0}


def save_checkpoint(folder, state):
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, CHECKPOINT + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(state, fh)
    os.replace(tmp, os.path.join(folder, CHECKPOINT))  # a restart never sees half a checkpoint


def main(args):
    host, hosts = host_identity()
    files, rows = read_rows(args.train)
    print(f"host {host} of {len(hosts)}: {len(files)} file(s), {len(rows)} rows: "
          + ", ".join(os.path.basename(f) for f in files))
    if not rows:
        raise SystemExit(f"no rows under {args.train}")
    state = load_checkpoint(args.checkpoint_dir)
    if state["epoch"]:
        print(f"resuming from epoch {state['epoch'] + 1} (checkpoint of epoch {state['epoch']})")
    w, b = state["w"], state["b"]
    loss = None
    for epoch in range(state["epoch"] + 1, args.epochs + 1):
        grad_w = sum((w * x + b - y) * x for x, y in rows) * 2 / len(rows)
        grad_b = sum((w * x + b - y) for x, y in rows) * 2 / len(rows)
        w, b = w - args.lr * grad_w, b - args.lr * grad_b
        loss = sum((w * x + b - y) ** 2 for x, y in rows) / len(rows)
        print(f"epoch {epoch} loss: {loss:.6f}", flush=True)
        save_checkpoint(args.checkpoint_dir, {"epoch": epoch, "w": w, "b": b})
        if args.stop_after and epoch >= args.stop_after and epoch < args.epochs:
            print(f"stopping after epoch {epoch} as asked (--stop-after)", file=sys.stderr)
            sys.exit(3)
    if host == hosts[0]:
        os.makedirs(args.model_dir, exist_ok=True)
        with open(os.path.join(args.model_dir, "model.json"), "w") as fh:
            json.dump({"w": w, "b": b}, fh, indent=2)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, f"report-{host}.json"), "w") as fh:
        json.dump({"host": host, "hosts": hosts, "files": [os.path.basename(f) for f in files],
                   "rows": len(rows), "loss": loss}, fh, indent=2)
    print(f"w={w:.4f} b={b:.4f}")


if __name__ == "__main__":
    sagemaker_training_main(
        main=main,
        inputs={"train": PathArgument(os.path.join(HERE, "data", "linear"), distribution="ShardedByS3Key")},
        metrics={"loss": r"loss: ([0-9.]+)"},
        model_dir=os.path.join(HERE, "output", "model"),
        output_dir=os.path.join(HERE, "output", "data"),
        checkpoint_dir=os.path.join(HERE, "output", "checkpoints"),
        additional_arguments=[
            {"dest": "--epochs", "type": int, "default": 30, "help": "Epochs to train in all"},
            {"dest": "--lr", "type": float, "default": 0.1, "help": "Learning rate"},
            {"dest": "--stop-after", "type": int, "default": 0,
             "help": "Exit with code 3 after this epoch, as an interruption would (0: never)"},
        ],
        base_job_name="train-linear",
        checkpoint_s3="default",
        description="Fit a line to the CSV files of the train channel.",
    )
