"""Count the words of every ``.txt`` file in a folder: a Processing job in a few lines.

Run it here, as a Processing job on this machine, or on SageMaker::

    python demo/wordcount.py
    python demo/wordcount.py --sagemaker-run=local
    python demo/wordcount.py --sagemaker-run=yes --sagemaker-role=MySageMakerRole \
        --sagemaker-image=ACCOUNT.dkr.ecr.REGION.amazonaws.com/IMAGE:TAG   # any image with python3

Each run writes ``counts.json`` (word → count, keys sorted) and ``counts.csv``
(``word,count``, most frequent first) to ``--output``. Only the standard
library is used, so any image with Python 3 can run it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections import Counter
from typing import Dict, Iterator

from aws_sagemaker_remote import output_location, sagemaker_processing_main

# Paths are relative to this file, not to the current directory, so the demo
# works from anywhere.
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "text")
DEFAULT_OUTPUT = os.path.join(HERE, "output", "wordcount")

#: A word is a run of letters, with apostrophes allowed inside ("don't").
WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def text_files(folder: str) -> Iterator[str]:
    """Every ``.txt`` file under ``folder``, in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".txt"):
                yield os.path.join(root, name)


def count_words(folder: str, lowercase: bool) -> "tuple[Counter[str], int]":
    """Word counts of all text files under ``folder`` and the number of files read."""
    counts: Counter[str] = Counter()
    files = 0
    for path in text_files(folder):
        files += 1
        with open(path, encoding="utf-8") as f:
            for line in f:
                words = WORD_RE.findall(line.lower() if lowercase else line)
                counts.update(words)
    return counts, files


def main(args: argparse.Namespace) -> Dict[str, int]:
    counts, files = count_words(args.input, args.lowercase)
    kept = {word: n for word, n in counts.items() if n >= args.min_count}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "counts.json"), "w", encoding="utf-8") as f:
        json.dump(kept, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.output, "counts.csv"), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "count"])
        for word, n in sorted(kept.items(), key=lambda item: (-item[1], item[0])):
            writer.writerow([word, n])
    print(f"wordcount: {files} files, {sum(counts.values())} words, {len(kept)} distinct "
          # in a job the folder goes away with the job: name where its files end up
          f"with count >= {args.min_count}, written to {output_location(args.output)}")
    return kept


if __name__ == "__main__":
    sagemaker_processing_main(
        main=main,
        inputs={"input": DEFAULT_INPUT},
        outputs={"output": DEFAULT_OUTPUT},
        additional_arguments=[
            {"dest": "--min-count", "type": int, "default": 1, "help": "Keep words seen at least this often."},
            {"dest": "--lowercase", "action": "store_true", "help": "Count 'The' and 'the' as one word."},
        ],
        base_job_name="wordcount",
        description="Count the words of every .txt file in a folder.",
    )
