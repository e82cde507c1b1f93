"""core.masking: the names models call themselves and their makers by, in the languages they
answer in, are found and replaced; what still names a model after masking is told apart."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.masking import Masker, fold, reported_names, table

CONFIGURED = ["mistral-7b-q4", "ollama:llama3.2:1b", "builtin:gemma3-270m", "qwen2.5-7b", "gpt-4"]

# Real self-descriptions (as models answer "who are you?"), with the names in each. English,
# Chinese, French, Spanish, German, Russian, Japanese; the six from issue 24 first.
SELF_DESCRIPTIONS: list[tuple[str, list[str]]] = [
    ("I'm Tongyi Qianwen, a large language model created by Alibaba Cloud.",
     ["Tongyi Qianwen", "Alibaba Cloud"]),
    ("我是通义千问，由阿里云开发的超大规模语言模型。", ["通义千问", "阿里云"]),
    ("Je suis Le Chat, un assistant conversationnel développé par Mistral AI.",
     ["Le Chat", "Mistral AI"]),
    ("我是DeepSeek，由深度求索公司开发的智能助手。", ["DeepSeek", "深度求索"]),
    ("我是由深度求索公司开发的人工智能助手。", ["深度求索"]),
    ("I am Qwen, created by Alibaba Cloud. I am a helpful assistant.", ["Qwen", "Alibaba Cloud"]),
    ("I am ChatGPT, a large language model trained by OpenAI, based on the GPT-4 architecture.",
     ["ChatGPT", "OpenAI", "GPT-4"]),
    ("Hello! I'm Claude, an AI assistant made by Anthropic.", ["Claude", "Anthropic"]),
    ("I'm Gemma, an open-weights AI assistant developed by Google DeepMind.",
     ["Gemma", "Google DeepMind"]),
    ("I am Phi, a small language model developed by Microsoft Research.",
     ["Phi", "Microsoft Research"]),
    ("I'm Llama 3, a large language model developed by Meta AI.", ["Llama 3", "Meta AI"]),
    ("Je suis Mixtral, un modèle développé par Mistral AI à Paris.", ["Mixtral", "Mistral AI"]),
    ("Soy Qwen2.5-7B, un modelo de lenguaje desarrollado por Alibaba Cloud.",
     ["Qwen2.5-7B", "Alibaba Cloud"]),
    ("Soy Llama, un modelo de lenguaje creado por Meta.", ["Llama", "Meta"]),
    ("¡Hola! Soy Gemini, un modelo de lenguaje de Google.", ["Gemini", "Google"]),
    ("Ich bin Gemma, ein offenes Sprachmodell von Google DeepMind.", ["Gemma", "Google DeepMind"]),
    ("Ich bin ein KI-Assistent namens Mistral, entwickelt von Mistral AI.", ["Mistral AI"]),
    ("Я — Qwen, большая языковая модель, созданная Alibaba Cloud.", ["Qwen", "Alibaba Cloud"]),
    ("Я ChatGPT, языковая модель от OpenAI.", ["ChatGPT", "OpenAI"]),
    ("私はQwenです。Alibaba Cloudによって開発された大規模言語モデルです。",
     ["Qwen", "Alibaba Cloud"]),
    ("我是文心一言，英文名是ERNIE Bot，由百度公司开发。", ["文心一言", "ERNIE Bot", "百度"]),
    ("你好，我是Kimi，由月之暗面科技有限公司开发的人工智能助手。", ["Kimi", "月之暗面"]),
    ("我是智谱清言，是智谱AI公司于2023年训练的语言模型。", ["智谱清言", "智谱AI"]),
    ("我是零一万物开发的Yi系列模型。", ["零一万物", "Yi"]),
    ("I am Yi, a model by 01.AI.", ["Yi", "01.AI"]),
    ("我是豆包，是字节跳动开发的人工智能。", ["豆包", "字节跳动"]),
    ("I'm SmolLM, a compact model from Hugging Face.", ["SmolLM", "Hugging Face"]),
    ("As an AI made by Alibaba Cloud, I cheer you on.", ["Alibaba Cloud"]),
]  # fmt: skip

ORDINARY = [
    "Keep your philosophy reading ritual.", "Finish the gym plan, Alpha!", "A small step today.",
    "A meta-analysis of your week", "google the venue", "le chat dort sur le canapé",
    "Take a deep breath and seek clarity.", "Your metadata is tidy; the llamas at the zoo wait.",
    "Сбережения растут, продолжай!", "今天你有三个任务：写报告、打电话、去健身房。",
    "Heute: Bericht fertig, Bank anrufen, Sport.", "Hoy: informe, banco y gimnasio.",
    "Open the window, then write the report.", "Phileas and Yiannis join the call at nine.",
]  # fmt: skip


def masker() -> Masker:
    return Masker.of(CONFIGURED)


@pytest.mark.parametrize(("text", "names"), SELF_DESCRIPTIONS)
def test_real_self_descriptions_are_masked(text: str, names: list[str]) -> None:
    m = masker()
    assert m.names_model(text), text
    masked = m.mask(text)
    for name in names:
        assert name.lower() not in masked.lower(), (name, masked)
    # Nothing is left for a fresh masker that knows only the table, and nothing leaks.
    assert not Masker.of([]).names_model(masked), masked
    assert not m.leaks(text), masked
    assert "hidden" not in masked and "[" not in masked, masked


def test_six_languages_and_enough_descriptions() -> None:
    assert len(SELF_DESCRIPTIONS) >= 22
    scripts = {
        "zh": any(re.search(r"[\u4e00-\u9fff]", t) and not re.search(r"[\u3040-\u30ff]", t)
                  for t, _ in SELF_DESCRIPTIONS),
        "ja": any(re.search(r"[\u3040-\u30ff]", t) for t, _ in SELF_DESCRIPTIONS),
        "ru": any(re.search(r"[\u0400-\u04ff]", t) for t, _ in SELF_DESCRIPTIONS),
        "fr": any(t.startswith("Je suis") for t, _ in SELF_DESCRIPTIONS),
        "es": any(t.startswith(("Soy", "¡Hola")) for t, _ in SELF_DESCRIPTIONS),
        "de": any(t.startswith("Ich bin") for t, _ in SELF_DESCRIPTIONS),
    }  # fmt: skip
    assert all(scripts.values()), scripts


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_words_are_left_alone(text: str) -> None:
    m = masker()
    assert not m.names_model(text), text
    assert m.mask(text) == text
    assert not m.leaks(text)


def test_stand_ins_follow_the_script_around_the_name() -> None:
    m = masker()
    assert m.mask("我是通义千问，由阿里云开发。") == "我是助手，由开发者开发。"
    assert m.mask("Я — Qwen, созданный Alibaba Cloud.") == "Я — ассистент, созданный разработчик."
    assert m.mask("私はQwenです。") == "私はアシスタントです。"
    assert m.mask("I'm Qwen, by Alibaba.") == "I'm the assistant, by the developer."
    # A product wins over its maker's shorter name at the same place.
    assert m.mask("我是智谱清言。") == "我是助手。"


def test_leaks_sees_what_masking_cannot_replace() -> None:
    m = masker()
    for text in ("Call me Q w e n.", "I am Q**wen**, your coach.", "I am L.L.A.M.A!",
                 "Built by D-e-e-p-S-e-e-k"):  # fmt: skip
        assert m.leaks(text), text
    assert not m.leaks("Plan: A, B, C. Then rest.")  # letters apart are not a name


def test_names_from_configuration_and_backends() -> None:
    # A configured name that is in no table, and a family a backend reported.
    m = Masker.of(["acme-zorblax-7b", "ollama:custom"])
    assert m.mask("I am acme-zorblax-7b.") == "I am the assistant."
    assert m.mask("Zorblax here!") == "the assistant here!"
    reported = reported_names(json.dumps({
        "model": "gpt-4-0613",
        "details": {"family": "starcoder2", "families": ["quux", "starcoder2"]},
        "usage": {"prompt_tokens": 3}, "custom_id": "Ada",
    }))  # fmt: skip
    assert sorted(reported) == ["gpt-4-0613", "quux", "starcoder2", "starcoder2"]
    m = Masker.of(reported)
    assert not m.names_model("Ada")
    assert m.mask("I am Quux.") == "I am the assistant."
    assert reported_names("not json") == [] and reported_names(None) == []


def test_table_rows_are_well_formed() -> None:
    data = table()
    assert {"qwen", "mistral", "deepseek", "ernie", "kimi", "glm", "yi"} <= set(data["families"])
    m = Masker.of([])
    for family, entry in data["families"].items():
        for name in entry["names"] + entry["makers"]:
            assert m.names_model(name), (family, name)
            assert not m.names_model(m.mask(name)), (family, name)


# -- properties -----------------------------------------------------------------------------
NAMES = [n for e in table()["families"].values() for n in e["names"] + e["makers"]]
CASED = set(table()["cased"])
SPACES = st.sampled_from([" ", "\u00a0", "\u3000", "\n", " — ", ", ", "：", "「", "("])


def _respell(name: str, draw: st.DrawFn) -> str:
    """The name as a model might write it: any case (unless it is an ordinary word), full-width
    letters, zero-width characters, separators between its words."""
    out = name
    if name not in CASED:
        out = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in out)
    if draw(st.booleans()):
        out = unicodedata.normalize("NFKC", out).translate(
            {c: c + 0xFEE0 for c in range(0x21, 0x7F)}
        )  # full-width Latin
    if draw(st.booleans()) and len(out) > 2:
        i = draw(st.integers(1, len(out) - 1))
        out = out[:i] + "\u200b" + out[i:]
    if " " in out and draw(st.booleans()):
        out = out.replace(" ", draw(st.sampled_from(["-", "", "·", "_"])), 1)
    return out


@st.composite
def sentences(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(NAMES))
    before = draw(st.sampled_from(["I am", "我是", "Je suis", "Soy", "Ich bin", "Я —", "私は", ""]))
    after = draw(st.sampled_from(["", ".", "!", "，由开发。", "です。", ", here to help", "2.5"]))
    return f"{before}{draw(SPACES)}{_respell(name, draw)}{after}", name


@settings(max_examples=300, deadline=None)
@given(sentences())
def test_any_spelling_case_punctuation_or_script_is_masked(case: tuple[str, str]) -> None:
    text, name = case
    m = Masker.of([])
    assert m.names_model(text), text
    masked = m.mask(text)
    assert not m.names_model(masked), (text, masked)
    assert not m.leaks(text), (text, masked)
    assert fold(name)[0].lower() not in fold(masked)[0].lower() or len(name) <= 2


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_masking_is_stable_on_any_text(text: str) -> None:
    m = masker()
    once = m.mask(text)
    assert m.mask(once) == once  # masking twice changes nothing more
    if not m.names_model(text):
        assert once == text


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["model", "family", "details", "x", "Families"]), inner,
                      max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(JSON, st.text(max_size=40))
def test_reported_names_never_fail_on_any_metadata(meta: object, junk: str) -> None:
    names = reported_names(json.dumps(meta))
    assert names == reported_names(meta)  # parsed or not, the same
    assert all(isinstance(n, str) and 0 < len(n) <= 120 for n in names)
    # Text that is not a JSON object with those keys gives nothing, never an error.
    assert reported_names(junk) == [] or json.loads(junk) is not None
    Masker.of(names).mask("I am here.")  # any reported name builds a masker


def test_letter_classes_match_the_same_with_or_without_ignorecase() -> None:
    """The boundary classes are compiled case-sensitively (much faster to compile); on every
    code point they match what the same class matches under IGNORECASE."""
    from core.masking import _ALNUM, _LETTER

    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for cls in (_LETTER, _ALNUM):
        plain = cls.removeprefix("(?-i:").removesuffix(")")
        folded = {m.start() for m in re.finditer(plain, everything, re.IGNORECASE)}
        scoped = {m.start() for m in re.finditer(cls, everything, re.IGNORECASE)}
        assert scoped == folded and len(scoped) > 50_000


def test_ascii_text_folds_to_itself() -> None:
    """fold's ASCII shortcut is what the per-character rule gives: NFKC, the zero-width and
    the lookalike tables leave every ASCII character as it is."""
    from core.masking import _LOOKALIKE, _ZERO_WIDTH

    for o in range(128):
        ch = chr(o)
        assert unicodedata.normalize("NFKC", ch).translate(_ZERO_WIDTH).translate(_LOOKALIKE) == ch
    text = "Qwen2.5 **7B** said:\n\tI'm\x00\x7f GPT-4 -- fine_tuned."
    assert fold(text) == (text, list(range(len(text))))
    assert fold("") == ("", [])
    # Not ASCII: the per-character rule (a Cyrillic е, a zero-width space, a full-width Ｑ).
    assert fold("Qw\u0435n\u200b Ｑ") == ("Qwen Q", [0, 1, 2, 3, 5, 6])


def test_shared_end_boundaries_find_what_one_boundary_per_name_finds() -> None:
    """The masker writes one end boundary after a run of names that share it; the pattern
    with a boundary after every name (`shared_ends=False`) finds the same matches, with the
    same group (what kind of name), on names with every kind of neighbour."""
    import random

    names = ["gemma2-9b-instruct-fp16", "ollama:qwen2.5:7b", "Mistral-7B-q4", "my/dir/phi3.gguf"]
    fast, ref = Masker(names), Masker(names, shared_ends=False)
    assert fast._kinds == ref._kinds and len(fast._re.pattern) < len(ref._re.pattern)
    everything = [n for e in table()["families"].values() for n in e.get("names", [])
                  + e.get("makers", [])] + names  # fmt: skip
    rng = random.Random(5)
    around = ["", " ", "-", "x", "X", "7", "_", ".", "é", "е", "中", "ー", "2.5", "-7b", "s", "'s"]
    texts = []
    for n in everything:
        for _ in range(6):
            a, b = rng.choice(around), rng.choice(around)
            word = rng.choice([n, n.upper(), n.lower(), n.replace("-", " "), n.title()])
            texts.append(f"{a}{word}{b} and {rng.choice(everything)}{rng.choice(around)}")
    texts.append(" ".join(rng.choice(everything) + rng.choice(around) for _ in range(3000)))
    for text in texts:
        folded = fold(text)[0]
        got = [(m.start(), m.end(), m.lastindex) for m in fast._re.finditer(folded)]
        want = [(m.start(), m.end(), m.lastindex) for m in ref._re.finditer(folded)]
        assert got == want, text
        assert fast.mask(text) == ref.mask(text) and fast.leaks(text) == ref.leaks(text)
