"""Tokenizers trained and run by the Hugging Face `tokenizers` library, the reference the native
tokenizer is compared with: `python tokenizers_reference.py DIR [EXTRA.json ...]` writes each
tokenizer as DIR/<name>.json, the corpus as DIR/corpus.json, and what the library makes of every
sentence as DIR/expected.json. EXTRA files (tokenizer.json files made by others) are run on the
same corpus under their file name.
"""
import json
import os
import random
import sys

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, AddedToken

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
random.seed(7)

words = ("the quick brown fox jumps over lazy dog model serving package weights tensor image text table "
         "café naïve résumé Zürich Ångström façade coöperate São Paulo Kraków Dvořák Øresund "
         "don't I'll we've they're she'd it's can't won't y'all rock'n'roll O'Brien "
         "price $4.99 3.14159 1,000,000 2026-12-05 10:30pm #hashtag @user e-mail a/b c\\d "
         "東京 北京大学 中文 日本語 한국어 こんにちは Привет мир Ελληνικά עברית العربية हिन्दी ไทย "
         "😀 🚀🚀 👍🏽 👨‍👩‍👧 ❤️ ™ © ° ½ ² ∑ ∞ → ← ♫ "
         "HTTP/2 JSON-RPC snake_case camelCase PascalCase UPPERCASE MiXeD x86_64 v1.2.3 "
         "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis").split()
spaces = [" ", " ", " ", "  ", "\t", "\n", " \n ", "\u00a0", "\u3000", "\r\n"]


def sentence(n):
    parts = [random.choice(words) for _ in range(n)]
    text = ""
    for i, part in enumerate(parts):
        text += part + (random.choice(spaces) if i + 1 < n else "")
    return text + random.choice(["", ".", "!", "?", "...", " ?!", ";", ":)"])


fixed = [
    "", " ", "   ", "Hello, world!", "hello world", "HELLO WORLD", "Don't stop believin'!",
    "The café served crème brûlée.", "naïve coöperation", "Ünïcödé àccents éverywhere",
    "I've got 99 problems; 1 isn't a number.", "3.14 + 2.71 = 5.85", "e^(iπ) + 1 = 0",
    "東京は日本の首都です。", "我爱北京天安门", "mixed 中文 and English", "😀😀😀 emoji only",
    "family: 👨‍👩‍👧‍👦, flags: 🇫🇷🇯🇵", "tabs\tand\nnewlines\r\nand  double  spaces",
    "  leading and trailing  ", "zero\u200bwidth\u200bspace", "soft\u00adhyphen", "control\u0007bell\u0000nul",
    "replacement \ufffd char", "combining e\u0301 vs \u00e9", "ﬁ ligature ﬀ", "Ⅻ roman numeral", "x² + y² = z²",
    "a" * 150, "ab" * 80 + " end", "word " * 40, "[CLS] inside [SEP] text [MASK]", "<s> and </s> markers",
    "<custom> token <custom>custom</custom>", "it's they're we'll I'd you've O'Neil'S 'tis",
    "http://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32",
    "snake_case_name and kebab-case-name", "αβγ δεζ ηθι", "Привет, как дела?", "مرحبا بالعالم", "שלום עולם",
    "नमस्ते दुनिया", "สวัสดีชาวโลก", "안녕하세요 세계", "ÅNGSTRÖM", "İstanbul ılık", "straße STRASSE",
    "\u2028line separator\u2029paragraph", "end with space ", "   \n\t  ", "!!!???...", "-- -- --", "'",
    "''quoted''", "1234567890", "12,345.67", "007", "00:00:00", "v2.0-beta+build.5",
]
corpus = fixed + [sentence(random.randint(1, 30)) for _ in range(200)] + [sentence(400)]
training = [sentence(random.randint(3, 25)) for _ in range(3000)] + fixed


def trained(name, tokenizer, trainer):
    tokenizer.train_from_iterator(training, trainer=trainer)
    return name, tokenizer


made = []

# BERT, uncased: BertNormalizer (accents stripped), BertPreTokenizer, WordPiece, [CLS]/[SEP].
t = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
t.normalizer = normalizers.BertNormalizer(lowercase=True)
t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
name, t = trained("bert-uncased", t, trainers.WordPieceTrainer(vocab_size=1200, special_tokens=specials))
t.post_processor = processors.BertProcessing(("[SEP]", t.token_to_id("[SEP]")), ("[CLS]", t.token_to_id("[CLS]")))
made.append((name, t))

# BERT, cased, accents kept, a template post-processor, and an added token.
t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
t.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, handle_chinese_chars=True)
t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
name, t = trained("bert-cased", t, trainers.WordPieceTrainer(vocab_size=900, special_tokens=specials))
t.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
    special_tokens=[("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
t.add_tokens([AddedToken("<custom>", normalized=True)])
made.append((name, t))

# GPT-2 / RoBERTa: byte-level BPE.
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
t.decoder = decoders.ByteLevel()
name, t = trained("byte-level-bpe", t, trainers.BpeTrainer(vocab_size=1500, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
t.add_special_tokens([AddedToken("<mask>", lstrip=True)])
made.append((name, t))

# GPT-2 without a prefix space or post-processor, with the prefix space on.
t = Tokenizer(models.BPE())
t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
name, t = trained("byte-level-prefix", t, trainers.BpeTrainer(vocab_size=700, special_tokens=["<|endoftext|>"],
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
made.append((name, t))

# BPE over words with a continuing prefix, NFD + lowercase + accents stripped, pairs with type ids.
t = Tokenizer(models.BPE(unk_token="[UNK]", continuing_subword_prefix="##"))
t.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
name, t = trained("bpe-whitespace", t, trainers.BpeTrainer(vocab_size=800, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                                                           continuing_subword_prefix="##"))
t.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
    special_tokens=[("[CLS]", t.token_to_id("[CLS]")), ("[SEP]", t.token_to_id("[SEP]"))])
made.append((name, t))

# SentencePiece-style BPE: Metaspace, byte fallback, fused unknowns, NFC.
t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
t.normalizer = normalizers.NFC()
t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
name, t = trained("metaspace-bpe", t, trainers.BpeTrainer(
    vocab_size=900, special_tokens=["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]))
made.append((name, t))

# Word level, split on white space and punctuation.
t = Tokenizer(models.WordLevel(unk_token="[UNK]"))
t.normalizer = normalizers.Sequence([normalizers.Strip(), normalizers.Replace("’", "'")])
t.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
name, t = trained("word-level", t, trainers.WordLevelTrainer(vocab_size=500, special_tokens=["[UNK]", "[PAD]"]))
made.append((name, t))

for extra in sys.argv[2:]:
    made.append((os.path.basename(extra).rsplit(".", 1)[0], Tokenizer.from_file(extra)))

expected = {}
for name, t in made:
    t.save(f"{out}/{name}.json")
    t.no_truncation()
    t.no_padding()
    single = [t.encode(text).ids for text in corpus]
    pairs = [t.encode(a, b) for a, b in zip(corpus[:60], corpus[60:120])]
    t.enable_truncation(max_length=16)
    truncated = [t.encode(text).ids for text in corpus]
    truncated_pairs = [t.encode(a, b).ids for a, b in zip(corpus[:60], corpus[60:120])]
    t.no_truncation()
    t.enable_padding(pad_id=0)
    batch = t.encode_batch(corpus[:20])
    expected[name] = {
        "single": single,
        "pairs": [e.ids for e in pairs],
        "pair_types": [e.type_ids for e in pairs],
        "truncated": truncated,
        "truncated_pairs": truncated_pairs,
        "batch_ids": [e.ids for e in batch],
        "batch_mask": [e.attention_mask for e in batch],
    }

with open(f"{out}/corpus.json", "w") as f:
    json.dump(corpus, f, ensure_ascii=False)
with open(f"{out}/expected.json", "w") as f:
    json.dump(expected, f)
print(len(corpus), "sentences,", len(made), "tokenizers")
