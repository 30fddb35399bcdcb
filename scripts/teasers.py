#!/usr/bin/env python3
"""Builds a labelled teaser set for `syndic eval` from any articles JSONL.

For every article of at least 3 x WORDS words it writes the article and an aggregator's
teaser of it: the first WORDS words, continued to the end of that sentence, then "Read more".
Each pair shares a `cluster` (the article's id), so `syndic eval --input OUT` scores how many
teasers join their original. Pairs across articles are scored too: sets of real news hold
copies of each other, so read its false positives with care (see BENCHMARKS.md).

    scripts/teasers.py --words 30 ../shared/data/nddev/docs.jsonl > teasers.jsonl
    syndic eval --input teasers.jsonl
"""
import argparse
import json
import re
import sys

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("inputs", nargs="+", help="articles as JSONL (id, source, body, ...)")
parser.add_argument("--words", type=int, default=40, help="teaser length in words [40]")
parser.add_argument("--teaser-first", action="store_true", help="write each teaser before its original")
parser.add_argument("--title", action="store_true", help="start each teaser with the article's title, as many scrapers do")
args = parser.parse_args()

count = 0
for path in args.inputs:
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            article = json.loads(line)
            body = article.get("body") or ""
            if len(body.split()) < 3 * args.words:
                continue
            # Cut after the sentence that holds the WORDS-th word, keeping the line breaks.
            seen, end = 0, len(body)
            for match in re.finditer(r"\S+", body):
                seen += 1
                if seen >= args.words and re.search(r"[.!?]$", match.group()):
                    end = match.end()
                    break
            original = {k: article[k] for k in ("id", "source", "body", "title", "url", "published_at") if k in article}
            original["cluster"] = article["id"]
            title = (article.get("title") or "") + "\n\n" if args.title else ""
            teaser = {
                "id": "teaser-" + article["id"],
                "source": "aggregator.example",
                "body": title + body[:end] + "\n\nRead more",
                "published_at": article.get("published_at"),
                "cluster": article["id"],
            }
            pair = [teaser, original] if args.teaser_first else [original, teaser]
            for record in pair:
                print(json.dumps(record, ensure_ascii=False))
            count += 1
print(f"{count} teasers", file=sys.stderr)
