#!/usr/bin/env python3
"""Builds a labelled set of syndicated copies of any articles JSONL, one copy pattern at a time.

The development sets hold few copies of each kind, and syndic's rules were written while
reading them; this checks whether what it learned holds on other text. For every article
long enough, it writes the article and a copy made with the pattern given (a site's furniture
around it, hard wraps, an edit, ...), both in one `cluster`, so that

    scripts/syndicate.py --pattern wraps ../shared/data/tgcontest/docs.jsonl > copies.jsonl
    syndic eval --input copies.jsonl

scores how many copies join their original. `teaser` writes an aggregator's teaser of the
lead (`--words`, `--title`), as `scripts/teasers.py` did.

Three patterns write look-alikes instead, each in a cluster of its own, which must NOT join
it: the same text with other figures (`other-numbers`: every number changed), with other
names (`other-names`: every capitalized word that does not open a sentence, each for an
invented one), or both (`other-facts`), as a recurring format reports another event. Articles with fewer than `--min-facts` of them to
change are left out: changing one or two words makes an edited copy, not another event.

Three more write partial reuse of the article inside another article of the input, which must
NOT join it either: `recap` (the other article's lead, then the article's paragraphs after
its first as background), `shared-block` (the other article's lead and ending around a block
of the article's middle paragraphs) and `shared-quote` (a sentence of the article put in
quotation marks in both: the original, and the other article quoting it after its lead).

Outlets, agencies and furniture come from lists of this script's own, with names that
syndic's rules and generator never mention, in the article's script (Latin or Cyrillic).
Pairs across articles are scored too: sets of real news hold copies of each other, so compare
false positives with those of `--pattern none`, which writes the originals only.
"""
import argparse
import json
import random
import re
import sys

OUTLETS = ["Kathmandu Herald", "Balkan Wire", "Tashkent Times", "Gulf Ledger", "Danube Post", "Andes Daily",
           "Nordic Monitor", "Sahel Observer", "Pacific Dispatch", "Caucasus Today"]
HOSTS = ["kathmanduherald.com", "balkanwire.net", "tashkenttimes.uz", "gulfledger.ae", "danubepost.eu",
         "andesdaily.pe", "nordicmonitor.se", "sahelobserver.org", "pacificdispatch.com", "caucasustoday.ge"]
AGENCIES = ["Yonhap", "Kyodo", "Anadolu Agency", "Bernama", "UzA", "Armenpress", "Prensa Latina", "Antara",
            "BTA", "Kabar"]
RU_OUTLETS = ["Вести Поволжья", "Сибирский вестник", "Новый Кавказ", "Уральский курьер", "Балтийское обозрение"]
RU_AGENCIES = ["Интерфакс", "РБК", "Регнум", "Прайм", "Фонтанка"]
CITIES = ["SEOUL", "TOKYO", "ANKARA", "KUALA LUMPUR", "TASHKENT", "YEREVAN", "HAVANA", "JAKARTA"]
RU_CITIES = ["МОСКВА", "КАЗАНЬ", "НОВОСИБИРСК", "САМАРА"]
MONTHS = ["January", "March", "May", "July", "September", "November"]
RU_MONTHS = ["января", "марта", "мая", "июля", "сентября", "ноября"]


def cyrillic(text):
    return len(re.findall(r"[\u0400-\u04FF]", text)) > len(text) / 4


def paragraphs(body):
    parts = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
    if len(parts) == 1:
        # One block: split it after every third sentence, as sites that re-flow copies do.
        sentences = re.split(r"(?<=[.!?])\s+(?=[\"“«A-ZА-ЯЁ])", parts[0])
        parts = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    return parts


def furniture(ru, rng):
    """A site's header (its name or host, a dateline, an attribution) and its footer."""
    if ru:
        outlet, agency = rng.choice(RU_OUTLETS), rng.choice(RU_AGENCIES)
        head = [outlet, f"{rng.choice(RU_CITIES)}, {rng.randint(1, 28)} {rng.choice(RU_MONTHS)} - {agency}."]
        lead_suffix = rng.choice([f" Об этом сообщает {agency}.", f", передает {agency}."])
        foot = [rng.choice(["Подписывайтесь на наш канал в Telegram", "Читайте также: главные новости дня",
                            f"Фото: {agency}", "Нашли ошибку? Выделите текст и нажмите Ctrl+Enter"])]
        return head, lead_suffix, foot
    outlet, host, agency = rng.choice(OUTLETS), rng.choice(HOSTS), rng.choice(AGENCIES)
    head = [rng.choice([outlet, host, f"By {outlet} staff"]),
            rng.choice([f"{rng.choice(CITIES)}, {rng.choice(MONTHS)} {rng.randint(1, 28)}. ",
                        f"{rng.choice(CITIES)} ({agency}) - ", ""]) + f"{outlet} reports, citing {agency}."]
    lead_suffix = rng.choice([f", {agency} reported.", f", according to {agency}.", f", {outlet} reports."])
    foot = [rng.choice([f"Follow {outlet} on Telegram for the latest updates.", "Share this article",
                        f"© 2024 {outlet}. All rights reserved.", f"Source: {agency}",
                        f"Sign up for the {outlet} newsletter"])]
    return head, lead_suffix, foot


def add_to_first_sentence(text, suffix):
    """An attribution in the first sentence: ", Y reported." takes the place of its full stop,
    a sentence of its own (" Об этом сообщает Y.") follows it."""
    match = re.search(r"[.!?](?=\s|$)", text)
    if not match:
        return text + suffix
    cut = match.end() if suffix.startswith(" ") else match.start()
    return text[:cut] + suffix + text[match.end():]


def wrap(text, width):
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join(lines + [line])


def light_edit(parts, rng):
    """An editor's hand: a sentence dropped, one word in `--edit-every` changed, a paragraph moved."""
    words = [p.split() for p in parts]
    fillers = (["также", "теперь", "ранее", "уже", "этот"] if cyrillic(" ".join(parts)) else
               ["reportedly", "also", "now", "further", "the"])
    for _ in range(max(1, sum(map(len, words)) // args.edit_every)):
        para = rng.randrange(len(words))
        if len(words[para]) > 3:
            i = rng.randrange(len(words[para]))
            words[para][i] = rng.choice(fillers)
    parts = [" ".join(w) for w in words]
    if len(parts) > 3:
        sentences = re.split(r"(?<=[.!?])\s+", parts[-2])
        if len(sentences) > 1:
            del sentences[rng.randrange(len(sentences))]
            parts[-2] = " ".join(sentences)
        parts[1], parts[2] = parts[2], parts[1]
    return parts


SYLLABLES = ["ka", "lo", "ver", "mi", "dan", "so", "ret", "bu", "nil", "za", "gor", "te"]
RU_SYLLABLES = ["ка", "ло", "вер", "ми", "дан", "со", "рет", "бу", "нил", "за", "гор", "те"]


def invented_name(ru, rng):
    syllables = RU_SYLLABLES if ru else SYLLABLES
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()


# A capitalized word, or a part of one after a hyphen or an apostrophe ("Wi-Fi", "O'Neill").
NAME = re.compile(r"\b[A-ZА-ЯЁ]\w*")
SENTENCE_START = re.compile(r"(?:^|[.!?][\"'»”)]*)\s*[\"'«“(]*$")


def names_in(body):
    """Capitalized words that do not open a sentence, as syndic reads names."""
    return [m for m in NAME.finditer(body) if not SENTENCE_START.search(body[max(0, m.start() - 8):m.start()])]


def facts(body, numbers, names):
    """How many distinct numbers and names `other_facts` would change: too few, and the
    look-alike is a copy with a word or two edited."""
    found = set(re.findall(r"\d+", body)) if numbers else set()
    found |= {m.group() for m in names_in(body)} if names else set()
    return len(found)


def other_facts(body, numbers, names, rng):
    """The same wording about another event: every number and/or every name inside a sentence
    replaced, consistently (one name always becomes the same other name)."""
    if numbers:
        def renumber(match):
            digits = match.group()
            while True:
                other = "".join(str(rng.randrange(10)) for _ in digits)
                if other != digits and (len(digits) == 1 or other[0] != "0"):
                    return other
        body = re.sub(r"\d+", renumber, body)
    if names:
        ru = cyrillic(body)
        chosen = {}
        out, last = [], 0
        for match in names_in(body):
            if match.group() not in chosen:
                chosen[match.group()] = invented_name(ru, rng)
            out += [body[last:match.start()], chosen[match.group()]]
            last = match.end()
        body = "".join(out) + body[last:]
    return body


def teaser(article):
    """An aggregator's teaser: the first `--words` words, continued to the end of that
    sentence (line breaks kept), then "Read more"; with `--title`, the headline first."""
    body = article["body"]
    seen, end = 0, len(body)
    for match in re.finditer(r"\S+", body):
        seen += 1
        if seen >= args.words and re.search(r"[.!?]$", match.group()):
            end = match.end()
            break
    title = (article.get("title") or "") + "\n\n" if args.title else ""
    return title + body[:end] + "\n\nRead more"


PARTIAL = ["recap", "shared-block", "shared-quote"]


def sentences(text):
    return [x for x in re.split(r"(?<=[.!?])\s+", text) if x]


def partial_reuse(article, other, pattern, rng):
    """(the original as written, the other article reusing part of it) for a PARTIAL pattern."""
    mine, theirs = paragraphs(article["body"]), paragraphs(other["body"])
    lead, rest = theirs[:1], theirs[1:]
    if pattern == "recap":
        return article["body"], "\n\n".join(lead + rest[:1] + mine[1:])
    if pattern == "shared-block":
        middle = mine[1:1 + max(1, len(mine) // 3)]
        return article["body"], "\n\n".join(lead + rest[:2] + middle + rest[2:4])
    # shared-quote: the longest sentence of the article, quoted by both.
    said = max(sentences(" ".join(mine[1:]) or mine[0]), key=len)
    quoted = f"\u201c{said.rstrip('.')},\u201d {rng.choice(['officials said', 'the statement said', 'a spokesman said'])}."
    original = "\n\n".join(mine).replace(said, quoted, 1)
    return original, "\n\n".join(lead + [quoted] + rest[:2])


def copy(article, pattern, rng):
    body = article["body"]
    if pattern == "teaser":
        return teaser(article)
    if pattern.startswith("other-"):
        return other_facts(body, pattern != "other-names", pattern != "other-numbers", rng)
    ru = cyrillic(body)
    parts = paragraphs(body)
    if pattern == "furniture":
        head, lead_suffix, foot = furniture(ru, rng)
        parts = head + [add_to_first_sentence(parts[0], lead_suffix)] + parts[1:] + foot
    elif pattern == "wraps":
        # MENAFN-style: hard line breaks inside paragraphs, a header glued to the first line.
        parts = [wrap(p, rng.randint(60, 80)) for p in parts]
        parts[0] = f"({rng.choice(AGENCIES if not ru else RU_AGENCIES)}) " + parts[0]
    elif pattern == "lost-spaces":
        # Scrapers that drop the markup between paragraphs and after sentences.
        text = " ".join(parts)
        text = re.sub(r"([.!?])\s+(?=\S)", lambda m: m.group(1) if rng.random() < 0.5 else m.group(0), text)
        parts = [text]
    elif pattern == "entities":
        text = "\n\n".join(parts)
        for plain, other in (("\"", "&quot;"), ("'", "&#39;"), ("“", "&ldquo;"), ("”", "&rdquo;"),
                             ("’", "&rsquo;"), (" - ", " &mdash; ")):
            text = text.replace(plain, other)
        text = text.replace(" ", "\u00a0", 3).replace("\n\n", "\n\u200b\n")
        parts = [text]
    elif pattern == "inserts":
        # Furniture between paragraphs: captions, an advertisement label, a link to another story.
        inserts = (["Реклама", "Фото: пресс-служба", "Читайте также: новости региона"] if ru else
                   ["Advertisement", "Photo: handout", "READ ALSO: Markets close higher on Friday",
                    "Story continues below advertisement"])
        out = []
        for i, p in enumerate(parts):
            out.append(p)
            if i % 2 == 1 and i + 1 < len(parts):
                out.append(rng.choice(inserts))
        parts = out
    elif pattern == "edit":
        parts = light_edit(parts, rng)
    elif pattern == "truncate":
        keep = max(1, (len(parts) * 3 + 4) // 5)
        parts = parts[:keep] + ["Читать далее" if ru else "Continue reading on the original site"]
    elif pattern == "update":
        # A wire's later version: a new first paragraph, the story below it, a closing addition.
        new_lead = ("Число пострадавших выросло, сообщили власти в понедельник вечером." if ru else
                    "Officials gave new details on Monday evening as the situation developed further.")
        extra = ("Ранее ведомство не комментировало ситуацию." if ru else
                 "The ministry had declined to comment earlier in the day.")
        parts = [new_lead] + parts + [extra]
    elif pattern == "all":
        # Furniture drawn before the edit, in the order the recorded figures were made with.
        head, lead_suffix, foot = furniture(ru, rng)
        parts = light_edit(parts, rng)
        parts = head + [add_to_first_sentence(parts[0], lead_suffix)] + parts[1:] + foot
        parts = [wrap(p, rng.randint(60, 80)) if len(p) > 100 else p for p in parts]
    else:
        raise ValueError(pattern)
    return "\n\n".join(parts)


PATTERNS = ["furniture", "wraps", "lost-spaces", "entities", "inserts", "edit", "truncate", "update", "all",
            "teaser", "other-numbers", "other-names", "other-facts"] + PARTIAL
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("inputs", nargs="+", help="articles as JSONL (id, source, body, ...)")
parser.add_argument("--pattern", required=True, choices=PATTERNS + ["none"])
parser.add_argument("--min-words", type=int, default=80, help="skip shorter articles [80]")
parser.add_argument("--edit-every", type=int, default=40, help="patterns edit and all: one word in N changed [40]")
parser.add_argument("--min-facts", type=int, default=4,
                    help="look-alike patterns: skip articles with fewer distinct numbers or names to change [4]")
parser.add_argument("--words", type=int, default=40,
                    help="pattern teaser: its length in words, of articles at least three times as long [40]")
parser.add_argument("--title", action="store_true",
                    help="pattern teaser: start it with the article's title, as many scrapers do")
parser.add_argument("--copy-first", action="store_true", help="write each copy before its original")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

rng = random.Random(args.seed)
count = 0
pool = []
for path in args.inputs:
    with open(path, encoding="utf-8") as lines:
        pool.extend(json.loads(line) for line in lines if line.strip())
# Articles that can carry another's reused text: long enough, and with a lead, a middle and an end.
reusers = [a for a in pool if len((a.get("body") or "").split()) >= args.min_words
           and len(paragraphs(a["body"])) >= 3] if args.pattern in PARTIAL else []
for article in pool:
    body = article.get("body") or ""
    words = len(body.split())
    if words < args.min_words or (args.pattern == "teaser" and words < 3 * args.words):
        continue
    if args.pattern.startswith("other-") and facts(body, args.pattern != "other-names",
                                                   args.pattern != "other-numbers") < args.min_facts:
        continue
    original = {k: article[k] for k in ("id", "source", "body", "title", "url", "published_at") if k in article}
    original["cluster"] = article["id"]
    records = [original]
    if args.pattern in PARTIAL:
        others = [a for a in reusers if a["id"] != article["id"]]
        if len(paragraphs(body)) < 3 or not others:
            continue
        other = rng.choice(others)
        original["body"], reused = partial_reuse(article, other, args.pattern, rng)
        reuse_id = f"{args.pattern}-{article['id']}"
        records.append({"id": reuse_id, "source": "reuse.example", "title": other.get("title"),
                        "body": reused, "published_at": article.get("published_at"),
                        "cluster": reuse_id})
    elif args.pattern != "none":
        copy_id = f"{args.pattern}-{article['id']}"
        look_alike = args.pattern.startswith("other-")
        # A teaser carries no headline field: finding it by its text is what is measured.
        title = None if look_alike or args.pattern == "teaser" else article.get("title")
        records.append({"id": copy_id, "source": "copy.example", "title": title,
                        "body": copy(article, args.pattern, rng),
                        "published_at": article.get("published_at"),
                        "cluster": copy_id if look_alike else article["id"]})
    for record in reversed(records) if args.copy_first else records:
        print(json.dumps(record, ensure_ascii=False))
    count += 1
print(f"{count} articles", file=sys.stderr)
