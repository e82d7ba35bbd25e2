#!/usr/bin/env python3
"""Writes N web-form lead records as NDJSON, for the dry-run benchmark.

    python3 benches/gen_leads.py 1000000 bench-data/leads.ndjson

The output is deterministic (fixed seed). The records exercise every mapping of
rules/flows/lead_to_hubspot.yaml:

* e-mail addresses in mixed case, some with surrounding spaces; about 1% reuse an
  earlier address (with different case/spacing), so the duplicate-key check fires;
* names of one to three words; a few records have no name;
* company, phone, score, country, source and tags are each missing on some records;
* phone numbers are valid US numbers in the usual spellings ("(415) 555-0132",
  "415-555-0132", "415.555.0132", "+1 415 555 0132", "4155550132");
* scores 0-100, countries from a short list (sometimes lower case), tags from a small
  list with repeats, and `submitted_at` as an RFC 3339 UTC timestamp.
"""

import json
import os
import random
import sys

SEED = 20240114

FIRST = """ada grace alan barbara edsger donald margaret ken dennis linus
guido bjarne john frances radia katherine sophie hedy annie niklaus tony leslie
robin fran carol ivan jean adele lynn shafi silvio yukihiro rasmus brendan anders
james larry sergey tim vint bob whitfield martin""".split()
LAST = """lovelace hopper turing liskov dijkstra knuth hamilton thompson ritchie
torvalds rossum stroustrup mccarthy allen perlman johnson wilson lamarr easley
wirth hoare lamport milner shaw neumann sammet conway goldwasser micali matsumoto
lerdorf eich hejlsberg gosling page brin berners-lee cerf kahn diffie hellman
fowler""".split()
COMPANIES = """Analytical Engines|Acme Corp|Initech|Globex|Umbrella Labs|Hooli|
Stark Industries|Wayne Enterprises|Cyberdyne Systems|Soylent Co|Vandelay Industries|
Pied Piper|Aperture Science|Black Mesa|Tyrell Corp|Wonka Industries|Massive Dynamic|
Oceanic Airlines|Dunder Mifflin|Prestige Worldwide""".replace("\n", "").split("|")
DOMAINS = """example.com example.org example.net mail.example.com corp.example
acme.test initech.test globex.test hooli.test navy.mil""".split()
# Real, assigned US area codes (NANP), all within 201-989.
AREA_CODES = [
    201, 202, 203, 205, 206, 207, 208, 210, 212, 213, 214, 215, 216, 217, 301, 302,
    303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 401,
    402, 404, 405, 406, 407, 408, 409, 410, 412, 413, 414, 415, 417, 419, 501, 502,
    503, 504, 505, 507, 508, 509, 510, 512, 513, 515, 516, 517, 518, 520, 601, 602,
    603, 605, 606, 607, 608, 609, 610, 612, 614, 615, 616, 617, 618, 619, 701, 702,
    703, 704, 706, 707, 708, 712, 713, 714, 715, 716, 717, 718, 719, 720, 801, 802,
    803, 804, 805, 806, 808, 810, 812, 813, 814, 815, 816, 817, 818, 828, 901, 903,
    904, 906, 907, 908, 909, 910, 912, 913, 914, 915, 916, 917, 918, 919, 920, 925,
    928, 931, 936, 937, 940, 941, 947, 949, 951, 952, 954, 956, 970, 971, 972, 973,
    978, 979, 980, 984, 985, 989,
]
COUNTRIES = ["US"] * 6 + ["CA"] * 2 + ["GB", "DE", "FR", "NL", "ES", "IT", "AU", "BR", "IN", "JP", "MX", "SE"]
SOURCES = ["webinar", "ebook", "trade_show", "referral", "ads", "newsletter"]
TAGS = ["math", "engines", "saas", "enterprise", "smb", "trial", "demo", "pricing", "partner", "vip"]


def phone(rng):
    area = rng.choice(AREA_CODES)
    # Exchange 2xx-9xx, never an N11 service code.
    while True:
        exchange = rng.randint(200, 999)
        if exchange % 100 != 11:
            break
    line = rng.randint(0, 9999)
    a, e, s = f"{area}", f"{exchange}", f"{line:04d}"
    form = rng.randrange(6)
    if form == 0:
        return f"({a}) {e}-{s}"
    if form == 1:
        return f"{a}-{e}-{s}"
    if form == 2:
        return f"{a}.{e}.{s}"
    if form == 3:
        return f"+1 {a} {e} {s}"
    if form == 4:
        return f"{a}{e}{s}"
    return f"1-{a}-{e}-{s}"


def mangle_email(rng, email):
    """Mixed case and stray spaces, as people type them into forms."""
    r = rng.random()
    if r < 0.30:
        email = email.capitalize()
    elif r < 0.40:
        email = email.upper()
    elif r < 0.55:
        local, _, domain = email.partition("@")
        email = f"{local.title()}@{domain.upper()}"
    r = rng.random()
    if r < 0.10:
        email = f" {email} "
    elif r < 0.15:
        email = f"  {email}"
    elif r < 0.20:
        email = f"{email}\t"
    return email


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} N OUTPUT.ndjson", file=sys.stderr)
        return 2
    n = int(argv[1])
    path = argv[2]
    rng = random.Random(SEED)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    emails = []
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", buffering=1 << 20) as f:
        for i in range(n):
            first = rng.choice(FIRST)
            last = rng.choice(LAST)
            if emails and rng.random() < 0.01:
                email = rng.choice(emails)  # same identity key as an earlier record
            else:
                email = f"{first}.{last}{i}@{rng.choice(DOMAINS)}"
                emails.append(email)
            rec = {"email": mangle_email(rng, email)}
            r = rng.random()
            if r < 0.03:
                pass  # no name
            else:
                words = [first, last] if r < 0.75 else ([first] if r < 0.85 else [first, rng.choice(FIRST), last])
                rec["name"] = " ".join(w.capitalize() for w in words)
            if rng.random() < 0.80:
                rec["company"] = rng.choice(COMPANIES)
            if rng.random() < 0.75:
                rec["phone"] = phone(rng)
            if rng.random() < 0.90:
                rec["score"] = rng.randint(0, 100)
            if rng.random() < 0.85:
                c = rng.choice(COUNTRIES)
                rec["country"] = c.lower() if rng.random() < 0.3 else c
            if rng.random() < 0.70:
                rec["source"] = rng.choice(SOURCES)
            if rng.random() < 0.65:
                rec["tags"] = [rng.choice(TAGS) for _ in range(rng.randint(0, 5))]
            if rng.random() < 0.95:
                day = rng.randint(0, 729)
                secs = rng.randint(0, 86399)
                y, doy = (2023, day) if day < 365 else (2024, day - 365)
                rec["submitted_at"] = rfc3339(y, doy, secs)
            f.write(json.dumps(rec, separators=(",", ":")))
            f.write("\n")
    os.replace(tmp, path)
    return 0


DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]


def rfc3339(year, doy, secs):
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month = 0
    while True:
        dim = DAYS[month] + (1 if month == 1 and leap else 0)
        if doy < dim:
            break
        doy -= dim
        month += 1
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{year:04d}-{month + 1:02d}-{doy + 1:02d}T{h:02d}:{m:02d}:{s:02d}Z"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
