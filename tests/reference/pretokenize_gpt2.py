#!/usr/bin/env python3
"""Writes tests/fixtures/pretokenize_gpt2.txt: texts split by GPT-2's
pre-tokenisation regex (openai/gpt-2 encoder.py, with the `regex` module),
the reference for core/tokenizer.c's hand-written splitter.
Each line: the text's UTF-8 as hex, a tab, then its words as hex joined by ','.
Run from the repo root: python3 tests/reference/pretokenize_gpt2.py"""
import random
import regex

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

FIXED = [
    "Hello world's end!! 123abc",
    "Sinus rhythm, 72 bpm. PR 160 ms, QRS 90 ms, QTc 410 ms.",
    "a  b   c\n\nd\t\te \n f",
    "trailing spaces   ",
    "   leading",
    "don't we'll I'm they've she'd you're it's 'quoted' O'Neil 'S 'T",
    "ST-elevation ≥ 2 mm in V2–V4; axis −30°; ±0.1 mV; 5 µV",
    "café naïve résumé Straße Ωμέγα",
    "中文测试，心电图正常。",
    "emoji 😀👍🏽 family 👨‍👩‍👧 ok",
    "x² + y³ = ½",
    "tab\there\r\nwindows line",
    "nbsp\u00a0here and\u2003em space",
    "numbers 3.14 1e-5 -42 0x1F 1,000,000",
    "<ecg> tokens <bos>like</eos>",
    "",
    " ",
    "\n",
    "''s",
    "a'",
]

POOL = (list("abcxyzABCXYZ0123456789 .,;:!?-()[]/'\"%+*=<>_#") + [" ", " ", " ", "\n", "\t", "\r\n", "  "]
        + ["é", "ü", "ß", "ñ", "µ", "°", "±", "→", "≥", "²", "½", "α", "Ω", "中", "文", "😀", "👍", "🏽",
           "\u200d", "\u00a0", "'s", "'re", "'ll", "'t", "’", "“", "”", "…", "—", "ф", "я", "€"])


def main():
    rng = random.Random(5)
    texts = list(FIXED)
    for _ in range(300):
        n = rng.randint(1, 40)
        texts.append("".join(rng.choice(POOL) for _ in range(n)))
    with open("tests/fixtures/pretokenize_gpt2.txt", "w") as f:
        for t in texts:
            words = PAT.findall(t)
            assert "".join(words) == t
            f.write(t.encode().hex() + "\t" + ",".join(w.encode().hex() for w in words) + "\n")


if __name__ == "__main__":
    main()
