#!/usr/bin/env python3
"""Established near-duplicate libraries on the same input as `syndic dedup`, whole process,
for the speed ratio in BENCHMARKS.md ("All cores"). Each reads the JSONL articles, and for each
asks its index for an earlier near-duplicate, inserting it when there is none: what dedup does.

  pip install gaoya datasketch
  scripts/peers.py gaoya FILE          # gaoya's SimHashStringIndex (Rust core), 64-bit, 6 blocks, distance 5
  scripts/peers.py datasketch FILE     # datasketch MinHashLSH, 128 permutations, threshold 0.8, word 3-shingles

Prints one line: peer, articles, seconds, articles/s, duplicates found.
"""
import json
import sys
import time


def articles(path):
    with open(path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield str(record.get("id", "")), f"{record.get('title', '')}\n{record.get('body', '')}"


def run_gaoya(path):
    from gaoya.simhash import SimHashStringIndex

    index = SimHashStringIndex(hash_size=64, num_blocks=6, hamming_distance=5, analyzer="word", lowercase=True)
    n = dups = 0
    for doc_id, text in articles(path):
        n += 1
        if index.query(text):
            dups += 1
        else:
            index.insert_document(n, text)
    return n, dups


def run_datasketch(path):
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    n = dups = 0
    for doc_id, text in articles(path):
        n += 1
        words = text.lower().split()
        m = MinHash(num_perm=128)
        m.update_batch([" ".join(words[i : i + 3]).encode() for i in range(max(1, len(words) - 2))])
        if lsh.query(m):
            dups += 1
        else:
            lsh.insert(str(n), m)
    return n, dups


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("gaoya", "datasketch"):
        sys.exit(__doc__)
    started = time.perf_counter()
    n, dups = {"gaoya": run_gaoya, "datasketch": run_datasketch}[sys.argv[1]](sys.argv[2])
    secs = time.perf_counter() - started
    print(f"{sys.argv[1]}  articles {n}  secs {secs:.2f}  per_sec {n / secs:.0f}  duplicates {dups}")


if __name__ == "__main__":
    main()
