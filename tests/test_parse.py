"""Parsing one post: front matter quirks, dates, bodies, links, summaries, titles, permalinks."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.jekyll import ArchiveConfig, ArchiveError, PostError, open_archive, parse_post, slugify
from store.text import body_to_paragraphs, fold, summarize

CST = timezone(timedelta(hours=8))


def parse(archive, name, text, **cfg):
    path = archive.write(name, text)
    return parse_post(open_archive(archive.root, **cfg), f"_posts/{name}", path.read_bytes())


def test_finews_style_post(archive):
    p = parse(
        archive,
        "2021-12-08-123.md",
        """
        ---
        layout: post
        title: "离岸人民币兑美元升至高位"
        date: 2021-12-08 10:46:18
        categories: emnews
        tags: 东财滚动新闻
        ---

        测试用的人民币新闻正文，数字是7.1234，完全是编写的。

        <http://finance.example.com/news/1.html>

        [返回东财滚动新闻](../emnews/)｜[返回首页](../)
        """,
    )
    assert p.id == "2021-12-08-123"
    assert p.title == "离岸人民币兑美元升至高位"
    assert p.date == datetime(2021, 12, 8, 10, 46, 18, tzinfo=CST)
    assert p.categories == ["emnews"] and p.tags == ["东财滚动新闻"]
    assert p.url == "http://finance.example.com/news/1.html"
    assert p.archive_url == "https://news.example.org/emnews/2021/12/08/123.html"
    assert "返回" not in p.body and "http" not in p.body
    assert p.body == "测试用的人民币新闻正文，数字是7.1234，完全是编写的。"


def test_python_yaml_tags_and_no_date_key(archive):
    p = parse(
        archive,
        "2018-11-24-Shuiku-Off-2467.md",
        """
        ---
        categories: !!python/unicode 'Shuiku-Off'
        keywords: !!python/str '水库线下,Shuiku-Off'
        count: !!python/int '3'
        createtime: 2018-11-24 01:25:00+00:00
        tags: !!python/unicode 'finacial'
        title: '老虎吃人 #F560'
        ---
        <div><p>正文</p></div>
        """,
    )
    assert p.categories == ["Shuiku-Off"] and p.tags == ["finacial"]
    # the file name gives the day; createtime on that day gives the time
    assert p.date == datetime(2018, 11, 24, 1, 25, tzinfo=timezone.utc)
    assert p.title == "老虎吃人 #F560"


def test_file_name_date_when_createtime_is_another_day(archive):
    p = parse(archive, "2020-01-02-x.md", "---\ntitle: t\ncreatetime: 2019-05-05 10:00:00\n---\nbody\n")
    assert p.date == datetime(2020, 1, 2, tzinfo=CST)


def test_createtime_when_no_file_name_date(archive):
    p = parse(archive, "x.md", "---\ntitle: t\ncreatetime: 2019-05-05 10:00:00\n---\nbody\n")
    assert p.date == datetime(2019, 5, 5, 10, tzinfo=CST)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2021-12-29 08:30:55 +0800", datetime(2021, 12, 29, 8, 30, 55, tzinfo=CST)),
        ("2021-12-29 08:30:55 -05:00", datetime(2021, 12, 29, 13, 30, 55, tzinfo=timezone.utc)),
        ("2021-12-29T00:30:55Z", datetime(2021, 12, 29, 0, 30, 55, tzinfo=timezone.utc)),
        ("2021-12-29", datetime(2021, 12, 29, tzinfo=CST)),
        ("'2021-12-29 08:30'", datetime(2021, 12, 29, 8, 30, tzinfo=CST)),
        # forms Jekyll reads too (Ruby's Time.parse): slashes or dots, and RSS/e-mail dates
        ("2021/12/29 08:30", datetime(2021, 12, 29, 8, 30, tzinfo=CST)),
        ("2021.12.29", datetime(2021, 12, 29, tzinfo=CST)),
        ("Wed, 29 Dec 2021 08:30:55 +0800", datetime(2021, 12, 29, 8, 30, 55, tzinfo=CST)),
        ("29 Dec 2021 00:30:55 GMT", datetime(2021, 12, 29, 0, 30, 55, tzinfo=timezone.utc)),
        ("Wed, 29 Dec 2021 08:30:55 -0000", datetime(2021, 12, 29, 8, 30, 55, tzinfo=CST)),  # no zone
    ],
)
def test_date_forms(archive, value, expected):
    p = parse(archive, "post.md", f"---\ntitle: t\ndate: {value}\n---\nbody\n")
    assert p.date == expected


@pytest.mark.parametrize(
    "value", ["Wed, 32 Dec 2021 08:30:55 +0800", "2021/12-29", "29 Foo 2021 08:30", "Wed, 29 Dec 99999 08:30"]
)
def test_dates_that_are_not_dates_are_reported(archive, value):
    with pytest.raises(PostError, match="no usable date"):
        parse(archive, "post.md", f"---\ntitle: t\ndate: {value}\n---\nbody\n")


def test_categories_list_or_string_and_singular(archive):
    a = parse(
        archive, "2020-01-01-a.md", "---\ntitle: a\ncategories: [Markets, World]\ntags: a b a\n---\nx\n"
    )
    assert a.categories == ["Markets", "World"] and a.tags == ["a", "b"]
    assert a.archive_url == "https://news.example.org/markets/world/2020/01/01/a.html"
    b = parse(archive, "2020-01-01-b.md", "---\ntitle: b\ncategory: tech\n---\nx\n")
    assert b.categories == ["tech"]


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("2020-01-01-a.md", "---\ntitle: a\npublished: false\n---\nx\n", "unpublished"),
        ("2020-01-01-b.md", "---\ntitle: [unclosed\n---\nx\n", "bad front matter"),
        ("c.md", "---\ntitle: c\ndate:  +0800\n---\nx\n", "no usable date"),
        ("2020-01-01-d.md", b"---\ntitle: \xff\xfe\n---\n", "not UTF-8"),
        ("2020-01-01-e.md", "   \n\n", "empty file"),
        ("2020-01-01-f.md", "just text, no front matter\n", "no YAML front matter"),
        ("2020-01-01-g.md", "---\n- a\n- b\n---\nx\n", "not a key: value mapping"),
        ("2020-01-01-h.md", "---\ntitle: ''\n---\n\n", "empty post"),
    ],
)
def test_broken_posts_raise_clear_reasons(archive, name, content, reason):
    path = (
        archive.write(name, content)
        if isinstance(content, bytes)
        else archive.write(name, content, dedent=False)
    )
    with pytest.raises(PostError) as err:
        parse_post(open_archive(archive.root), f"_posts/{name}", path.read_bytes())
    assert reason in str(err.value)


def test_leading_blank_line_before_front_matter_is_tolerated(archive):
    p = parse(archive, "2020-01-01-a.md", "\n---\ntitle: ok\n---\nbody\n")
    assert p.title == "ok"


def test_html_body_to_clean_text():
    paras = body_to_paragraphs(
        "<p>第一段 &amp; <b>加粗</b><script>alert(1)</script></p><!-- hidden -->"
        "<style>p{}</style><p>第二<span>\n   段</span></p><div>Third&nbsp;para &lt;x&gt;</div>"
    )
    assert paras == ["第一段 & 加粗", "第二段", "Third para <x>"]


def test_markdown_body_to_clean_text():
    paras = body_to_paragraphs(
        "# Heading\n\nSome **bold** text with a [link](http://x.example).\n\n![img](a.png)\n\n- item one\n"
        "{% include x.html %}\n\n[返回南方日报新闻](//x/category/a.html)｜[返回首页](//x/)\n"
    )
    assert paras == ["Heading", "Some bold text with a link.", "item one"]


def test_source_link_rules(archive):
    empty = parse(archive, "2020-01-01-a.md", "---\ntitle: a\n---\ntext\n\n<>\n")
    assert empty.url is None
    keyed = parse(
        archive,
        "2020-01-01-b.md",
        "---\ntitle: b\nsource: https://src.example/1\n---\nx <http://other.example>\n",
    )
    assert keyed.url == "https://src.example/1"
    # a relative `url` key is not a source link
    rel = parse(archive, "2020-01-01-c.md", "---\ntitle: c\nurl: /local/page\n---\ntext\n")
    assert rel.url is None


def test_summary_prefers_description_then_digest_then_sentences(archive):
    d = parse(archive, "2020-01-01-a.md", "---\ntitle: a\ndescription: 摘要在这里。\n---\n正文第一句。\n")
    assert d.summary == "摘要在这里。"
    q = parse(archive, "2020-01-01-b.md", "---\ntitle: b\n---\n> 导语一句。\n\n正文第一句。正文第二句。\n")
    assert q.summary == "导语一句。"
    assert "导语一句。" in q.body and "正文第一句。" in q.body


def test_summary_cuts_at_sentence_ends():
    text = "第一句话很短。" + "第二句话稍微长一点，但是也不算太长！" + "第三句" * 30 + "。"
    s = summarize([text], limit=40)
    assert s == "第一句话很短。第二句话稍微长一点，但是也不算太长！"
    en = summarize(["One sentence here. Another one follows. " + "word " * 50], limit=45)
    assert en == "One sentence here. Another one follows."
    long_first = summarize(["x" * 300], limit=50)
    assert len(long_first) <= 50 and long_first.endswith("…")
    # a paragraph far longer than the limit, then another: whole sentences of the first only
    assert summarize(["短句。" * 100, "下一段。"], limit=20) == "短句。" * 6
    assert summarize(["第一段。", "第二段。"], limit=200) == "第一段。第二段。"


def test_title_falls_back_to_first_line_then_slug(archive):
    p = parse(archive, "2020-01-01-slug-here.md", "---\ndate: 2020-01-01\n---\n第一行是标题\n\n第二段\n")
    assert p.title == "第一行是标题"


def test_permalink_styles_and_overrides(archive):
    archive.config("url: https://x.example\nbaseurl: /blog\npermalink: pretty\n")
    p = parse(
        archive,
        "2020-03-04-hello.md",
        "---\ntitle: h\ncategories: A\ndate: 2020-03-04 23:30:00 +0000\n---\nx\n",
    )
    assert p.archive_url == "https://x.example/blog/a/2020/03/04/hello/"
    q = parse(
        archive,
        "2020-03-04-hello2.md",
        "---\ntitle: h\ndate: 2020-03-04\n---\nx\n",
        permalink="/:year/:title",
    )
    assert q.archive_url == "https://x.example/blog/2020/hello2"
    r = parse(archive, "2020-03-04-x.md", "---\ntitle: h\npermalink: /fixed/page.html\n---\nx\n")
    assert r.archive_url == "https://x.example/blog/fixed/page.html"
    u = parse(
        archive,
        "2020-03-04-x y.md",
        "---\ntitle: h\ncategories: [A, B]\ndate: 2020-03-04\n---\nx\n",
        permalink="/:categories/:year/:unknown/:title:output_ext",
    )
    # Jekyll's :title is the file name's slug made a URL (Utils.slugify, pretty): x-y, not x%20y
    assert u.archive_url == "https://x.example/blog/a/b/2020/:unknown/x-y.html"


def test_permalink_placeholders_are_jekylls(archive):
    archive.config("url: https://x.example\n")
    post = (
        "---\ntitle: h\ncategories: [Work 2 Progress, news, News]\ndate: 2021-01-01 10:00:00 +0000\n---\nx\n"
    )
    cases = {
        "/:categories/:title:output_ext": "/work%202%20progress/news/Fed-raises-rates!.html",
        "/:slugified_categories/:slug/": "/work-2-progress/news/fed-raises-rates/",
        "/:long_month/:long_day/:w_year/W:week/:w_day/": "/January/Friday/2020/W53/5/",
        "/:year/:i_month/:i_day/:short_month/:short_day/:y_day/": "/2021/1/1/Jan/Fri/001/",
    }
    for template, expected in cases.items():
        p = parse(archive, "2021-01-01-Fed raises rates!.md", post, permalink=template)
        assert p.archive_url == "https://x.example" + expected.replace("!", "%21"), template
    chinese = parse(archive, "2021-01-01-汇率 走强.md", post, permalink="/:title/")
    assert chinese.archive_url == "https://x.example/" + quote("汇率-走强") + "/"


def test_a_permalinks_own_text_makes_a_valid_url_as_jekyll_serves_it(archive):
    """Spaces, `?`, `#`, `%` and other scripts in a permalink's literal text are percent-encoded (the
    page Jekyll writes is asked for so), and `..` or `.` segments are dropped, as Jekyll drops them."""
    archive.config("url: https://x.example\n")

    def url(permalink: str) -> str:
        front = f"---\ntitle: h\ndate: 2021-01-01\npermalink: {permalink!r}\n---\nx\n"
        return parse(archive, "2021-01-01-a.md", front).archive_url

    assert url("/新闻 一/:title?x#y%z") == "https://x.example/" + quote("新闻 一") + "/a%3Fx%23y%25z"
    assert url("/../../etc/./:title/") == "https://x.example/etc/a/"
    assert url(" ") == "https://x.example/%20"
    assert url("/a//b/...:title") == "https://x.example/a/b/...a"


def _kept(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_slugs_are_jekylls_for_any_text(text):
    for pretty, cased in ((True, True), (False, False)):
        slug = slugify(text, pretty=pretty, cased=cased)
        extra = "._~!$&'()+,;=@" if pretty else ""
        assert "--" not in slug and not slug.startswith("-") and not slug.endswith("-")
        assert all(ch == "-" or ch in extra or _kept(ch) for ch in slug)
        assert cased or slug == slug.lower()
    # letters, marks and digits are kept, in order; every other run is one hyphen
    assert [ch for ch in slugify(text, cased=True) if ch != "-"] == [ch for ch in text if _kept(ch)]


def test_open_archive_accepts_root_or_posts_folder(archive, tmp_path):
    assert open_archive(archive.root).posts_dir == open_archive(archive.posts).posts_dir
    with pytest.raises(ArchiveError, match="no _posts folder"):
        open_archive(tmp_path)
    with pytest.raises(ArchiveError, match="not found"):
        open_archive(tmp_path / "missing")
    archive.config("timezone: Mars/Olympus\n")
    with pytest.raises(ArchiveError, match="time zone"):
        open_archive(archive.root)


def test_fold():
    assert fold("銀行ＡＢＣ１２３Abc") == "银行abc123abc"


def test_nfkc_shortcut_only_skips_characters_whose_folding_does_not_matter():
    import re
    import unicodedata

    from store.text import NFKC_SAFE

    safe = re.compile(f"[{NFKC_SAFE}]")

    def word_chars(s):
        return re.sub(r"\W", "", s.lower())

    wrong = [
        hex(cp)
        for cp in range(0x10000)
        if safe.match(chr(cp)) and word_chars(unicodedata.normalize("NFKC", chr(cp))) != word_chars(chr(cp))
    ]
    assert wrong == []
    assert fold("〸＿ａ") == "十_a"


def test_markdown_emphasis_marks_go_and_lone_marks_stay():
    from store.text import body_to_paragraphs

    assert body_to_paragraphs("**粗体** 与 __强调__、~~删除~~ 和 `代码`") == [
        "粗体与强调、删除和代码"
    ]  # (spaces between CJK go)
    assert body_to_paragraphs("snake_case 与 2*3 与 ~5%") == ["snake_case 与 2*3 与 ~5%"]


MARKDOWNISH = " \t\n\r\x0b\x0c\u2028#>-*+_1.)a中，"


@given(st.text(alphabet=MARKDOWNISH, max_size=30))
def test_markdown_blocks_are_found_at_the_start_of_any_line(text):
    import re

    from store.text import _MD_BLOCK_FIRST, _MD_BLOCK_NEXT, _MD_BLOCK_START

    at_line_starts = re.compile("^" + _MD_BLOCK_START, re.M)  # the definition
    found = bool(_MD_BLOCK_FIRST.match(text) or _MD_BLOCK_NEXT.search(text))
    assert found == bool(at_line_starts.search(text))


@given(st.text(alphabet=MARKDOWNISH, max_size=30))
def test_leading_digest_is_its_first_quoted_lines(text):
    from store.text import _MD_QUOTE, leading_digest

    lines = []
    for raw in text.lstrip("\n").splitlines():  # the definition: every line from the top that quotes
        if not _MD_QUOTE.match(raw):
            break
        lines.append(_MD_QUOTE.sub("", raw, count=1))
    expected = "\n".join(body_to_paragraphs("\n".join(lines))) if lines else ""
    assert leading_digest(text) == expected


_NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


@given(
    seconds=st.integers(-3 * 366 * 86400, 3 * 366 * 86400),
    offset_hours=st.one_of(st.none(), st.integers(-12, 14)),
    future=st.booleans(),
)
def test_a_post_is_indexed_held_or_taken_for_a_typo_by_its_date_alone(
    tmp_path_factory, seconds, offset_hours, future
):
    # Jekyll's rule (`future: false` by default) and the year-ahead typo rule, for any date and offset
    import store.jekyll as jekyll
    from store.jekyll import MAX_FUTURE, PostHeld, PostNotYet

    root = tmp_path_factory.mktemp("site")
    (root / "_posts").mkdir()
    (root / "_config.yml").write_text(f"timezone: Asia/Shanghai\nfuture: {str(future).lower()}\n")
    zone = CST if offset_hours is None else timezone(timedelta(hours=offset_hours))
    when = (_NOW + timedelta(seconds=seconds)).astimezone(zone)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S") + ("" if offset_hours is None else when.strftime(" %z"))
    raw = f"---\ntitle: t\ndate: {stamp}\n---\nbody\n".encode()
    real = jekyll.now_utc
    jekyll.now_utc = lambda: _NOW
    try:
        try:
            post = parse_post(open_archive(root), "_posts/2026-06-01-t.md", raw)
            outcome, until = "indexed", None
        except PostHeld as exc:
            outcome, until = "held", exc.until
        except PostNotYet as exc:
            outcome, until = "typo", exc.until
    finally:
        jekyll.now_utc = real
    if when > _NOW + MAX_FUTURE:
        assert outcome == "typo" and until == (when - MAX_FUTURE).timestamp()
    elif when > _NOW and not future:
        assert outcome == "held" and until == when.timestamp()
    else:
        assert outcome == "indexed" and post.date == when


def test_front_matter_defaults_of_the_config_apply_to_posts_as_jekyll_ranks_them(archive):
    archive.config(
        """
        url: https://news.example.org
        defaults:
          - scope: {path: "", type: posts}
            values: {categories: [news], tags: [默认]}
          - scope: {path: _posts/markets}
            values: {categories: [markets]}
          - scope: {path: "_posts/*/drafts"}
            values: {published: false}
          - scope: {path: "", type: pages}
            values: {categories: [pages-only]}
        """
    )
    plain = parse(archive, "2024-05-01-a.md", "---\ntitle: a\ndate: 2024-05-01\n---\nx\n")
    assert (plain.categories, plain.tags) == (["news"], ["默认"])
    nested = parse(archive, "markets/2024-05-01-b.md", "---\ntitle: b\ndate: 2024-05-01\n---\nx\n")
    assert (nested.categories, nested.tags) == (["markets"], ["默认"])  # the longer path wins
    own = parse(
        archive,
        "markets/2024-05-01-c.md",
        "---\ntitle: c\ndate: 2024-05-01\ncategories: fx markets\ntags: [自己]\ncategory: 单数\n---\nx\n",
    )
    # the post's own front matter wins over them all, except that categories add up as in Jekyll: the
    # defaults', then the post's `categories`, then its `category`, each name once
    assert (own.categories, own.tags) == (["markets", "fx", "单数"], ["自己"])
    with pytest.raises(PostError, match="unpublished"):
        parse(archive, "markets/drafts/2024-05-01-d.md", "---\ntitle: d\ndate: 2024-05-01\n---\nx\n")


def test_front_matter_defaults_newsbot_cannot_use_are_ignored_as_jekyll_ignores_them(archive):
    # not a list, an entry without values, a nested value (an author object; or lists of lists, which
    # YAML aliases could expand): nothing a post is read with
    post = "---\ntitle: a\ndate: 2024-05-01\n---\nx\n"
    for defaults, tags in (
        ("{path: ''}", []),
        ("[{scope: {path: ''}}, {values: {tags: [a]}}]", ["a"]),  # (no scope: every file)
        ("[{scope: {path: ''}, values: {categories: [[a, b]], author: {name: x}, tags: [b]}}]", ["b"]),
    ):
        archive.config(f"url: https://news.example.org\ndefaults: {defaults}\n")
        parsed = parse(archive, "2024-05-01-a.md", post)
        assert (parsed.categories, parsed.tags) == ([], tags)
    archive.config("url: x\ndefaults: [" + ", ".join(["{values: {tags: a}}"] * 1001) + "]\n")
    with pytest.raises(ArchiveError, match="over 1000 entries"):
        open_archive(archive.root)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.from_regex(
            r"\A(Mon, )?[0-3]?\d (Jan|Feb|Dec) \d{4}( \d\d:\d\d(:\d\d)?)?( [+-]\d{4}| GMT| EST)?\Z"
        ),
        st.from_regex(r"\A\d{4}[-/.]\d{1,2}[-/.]\d{1,2}( \d{1,2}:\d\d)?\Z"),
    )
)
def test_any_date_text_is_a_date_in_a_zone_or_none(text):
    from zoneinfo import ZoneInfo

    from store.jekyll import parse_date

    when = parse_date(text, ZoneInfo("Asia/Shanghai"))
    assert when is None or when.tzinfo is not None


# a configuration for parsing posts alone (hypothesis tests: no archive folder per example)
_NO_ARCHIVE = ArchiveConfig(
    root=Path("/nonexistent"), posts_dir=Path("/nonexistent/_posts"), timezone="Asia/Shanghai"
)

# YAML 1.1's timestamps, real dates or not
_TIMESTAMP = (
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(([Tt]| +)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,7})?( *(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?"
)


# what a scraper writes in a simple front-matter line: numbers in YAML 1.1's spellings, times, dates, words
_PLAIN_VALUE = st.one_of(
    st.from_regex(
        r"[-+]?(0x[0-9a-fA-F]{1,3}|0b[01]{1,4}|0[0-7]{1,3}|[0-9][0-9_]{0,4}(\.[0-9]{0,3})?(e[+-]?[0-9])?)",
        fullmatch=True,
    ),
    st.from_regex(
        r"[0-9]{1,3}(:[0-5]?[0-9]){1,2}|\.(inf|Inf|nan|NaN)|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?",
        fullmatch=True,
    ),
    st.from_regex(_TIMESTAMP, fullmatch=True),
    st.text(alphabet="0123456789.:_-+eExX abc汇率", min_size=1, max_size=10),
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["title", "tags", "categories", "slug", "date"]), _PLAIN_VALUE), max_size=4
    )
)
def test_the_fast_front_matter_path_reads_a_post_as_yaml_does(lines):
    """The fast path for simple `key: value` lines gives the post YAML gives, or the same reason:
    values YAML 1.1 reads as numbers (`0x1F`, `017`, `10:30`, `.inf`) go through YAML."""
    front = "".join(f"{key}: {value}\n" for key, value in dict(lines).items())
    raw = f"---\n{front}---\nbody\n".encode()
    outcomes = []
    for fast in (True, False):
        try:
            outcomes.append(parse_post(_NO_ARCHIVE, "_posts/2024-05-01-x.md", raw, use_fast_path=fast))
        except PostError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1], front


def _spelled_timestamp(year, month, day, time, zone):
    text = f"{year:04d}-{month:0{1 + (day % 2)}d}-{day:02d}"
    if time is not None:
        sep, hh, mm, ss, frac = time
        text += f"{sep}{hh:0{1 + (mm % 2)}d}:{mm:02d}:{ss:02d}{frac}"
        if zone is not None:
            space, sign, zh, zm = zone
            text += space + (
                "Z" if zh is None else f"{sign}{zh:0{1 + (zh % 2)}d}{'' if zm is None else f':{zm:02d}'}"
            )
    return text


_SPELLED_TIMESTAMPS = st.builds(
    _spelled_timestamp,
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.none()
    | st.tuples(
        st.sampled_from(["T", "t", " ", "  "]),
        st.integers(0, 24),
        st.integers(0, 60),
        st.integers(0, 60),
        st.sampled_from(["", ".", ".5", ".123456789"]),
    ),
    st.none()
    | st.tuples(
        st.sampled_from(["", " "]),
        st.sampled_from("+-"),
        st.none() | st.integers(0, 24),
        st.none() | st.integers(0, 60),
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.from_regex(_TIMESTAMP, fullmatch=True) | _SPELLED_TIMESTAMPS)
def test_a_yaml_timestamp_is_read_as_yaml_reads_it(text):
    """Timestamps reach parse_date as their text (both front-matter paths); what it makes of them is what
    YAML's own timestamp reading makes, and a text that is no real date is no date, not an error."""
    import yaml

    from store.jekyll import parse_date

    tz = ZoneInfo("Asia/Shanghai")
    try:
        expected = yaml.safe_load(f"d: {text}")["d"]
    except (ValueError, OverflowError):
        expected = None  # no real date or time: YAML fails, Ruby's YAML keeps the text
    got = parse_date(text, tz)
    if expected is None or isinstance(expected, str):
        assert got is None or isinstance(expected, str)
        return
    if not isinstance(expected, datetime):
        expected = datetime.combine(expected, datetime.min.time(), tz)
    elif expected.tzinfo is None:
        expected = expected.replace(tzinfo=tz)
    assert got == expected, text
