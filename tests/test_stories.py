"""Stories: reports of one event grouped at sync (store.stories, store.story_rows)."""

from __future__ import annotations

import itertools
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store import sync as sync_module
from store.db import Store
from store.jekyll import open_archive
from store.search import search
from store.stories import Grouper, _bigrams, fingerprint, process_start, similarity
from store.sync import sync_archive

from .conftest import CORPUS, Archive, sync

# Fixture posts written for these tests (not corpus text).
CUT = (
    "央行宣布下调存款准备金率0.5个百分点",
    "中国人民银行决定于12月15日下调金融机构存款准备金率0.5个百分点，释放长期资金约1.2万亿元。",
)
CUT_REWRITE = (
    "央行：12月15日起降准0.5个百分点 释放长期资金1.2万亿",
    "人民银行今日宣布，决定于12月15日下调金融机构存款准备金率0.5个百分点，此次降准共计释放长期资金约1.2万亿元。（新华社）",
)
RATING_A = (
    "高盛：首予甲乙科技买入评级 目标价12.5港元",
    "高盛发布研究报告称，首予甲乙科技买入评级，目标价12.5港元，看好其云业务收入增长。",
)
RATING_B = (
    "高盛：首予丙丁能源买入评级 目标价30.2港元",
    "高盛发布研究报告称，首予丙丁能源买入评级，目标价30.2港元，看好其光伏业务收入增长。",
)
FLOW_20 = ("北向资金净流入超20亿元", "数据显示，截至目前，北向资金净流入超20亿元。")
FLOW_35 = ("北向资金净流入超35亿元", "数据显示，截至目前，北向资金净流入超35亿元。")
OTHER = (
    "某市出台新能源汽车消费补贴细则",
    "该市商务局发布通知，对购买新能源汽车的个人消费者给予每辆车最高5000元补贴。",
)


def write(archive: Archive, name: str, post: tuple[str, str], date: str) -> Path:
    return archive.post(f"{name}.md", post[0], post[1], date=date)


# Reports of one morning: file name -> (post, date)
MORNING = {
    "2024-05-01-cut": (CUT, "2024-05-01 10:00:00 +0800"),
    "2024-05-01-cut-rewrite": (CUT_REWRITE, "2024-05-01 10:40:00 +0800"),
    "2024-05-01-rating-a": (RATING_A, "2024-05-01 11:00:00 +0800"),
    "2024-05-01-rating-b": (RATING_B, "2024-05-01 11:05:00 +0800"),
    "2024-05-01-flow-20": (FLOW_20, "2024-05-01 10:05:00 +0800"),
    "2024-05-01-flow-35": (FLOW_35, "2024-05-01 10:20:00 +0800"),
    "2024-05-01-other": (OTHER, "2024-05-01 10:10:00 +0800"),
    # the same text again, past the 48-hour window: a new story
    "2024-05-04-cut-again": (CUT_REWRITE, "2024-05-04 09:00:00 +0800"),
}


def write_morning(archive: Archive, names) -> None:
    for name in names:
        write(archive, name, *MORNING[name])


async def story_of(store: Store, post_id: str) -> int:
    post = await store.get_post(post_id)
    assert post is not None
    return (await store.stories_of([post.rowid]))[post.rowid][0]


def test_similarity_tells_rewrites_from_look_alikes():
    same = similarity(fingerprint(*CUT), fingerprint(*CUT_REWRITE))
    template = similarity(fingerprint(*RATING_A), fingerprint(*RATING_B))
    update = similarity(fingerprint(*FLOW_20), fingerprint(*FLOW_35))
    unrelated = similarity(fingerprint(*CUT), fingerprint(*OTHER))
    assert same >= 0.45
    assert template == 0.0  # the target prices conflict
    assert update == 0.0  # a new figure is a new story (decided, see store.stories)
    assert unrelated < 0.2
    # figures written differently are one figure: stock codes with leading zeros, 40 and 40.0
    a = fingerprint("某公司(00388.HK)目标价下调至574港元", "")
    b = fingerprint("维持某公司(0388.HK)评级 目标价574.0港元", "")
    assert similarity(a, b) > 0


async def test_sync_groups_reports_of_one_event(store: Store, archive: Archive):
    write_morning(archive, MORNING)
    await sync(store, archive)
    ids = list(MORNING)
    got = {i: await story_of(store, i) for i in ids}
    assert got["2024-05-01-cut"] == got["2024-05-01-cut-rewrite"]
    others = [got[i] for i in ids if "cut" not in i or i == "2024-05-04-cut-again"]
    assert len(set(others)) == len(others)
    assert got["2024-05-01-cut"] not in others
    assert all(s > 0 for s in got.values())

    reports = await store.story_posts(got["2024-05-01-cut"])
    assert [p.id for p in reports] == ["2024-05-01-cut", "2024-05-01-cut-rewrite"]  # first report first
    assert all(p.reports == 2 for p in reports)


async def test_search_counts_a_story_once_and_shows_its_reports_on_every_page(store: Store, archive: Archive):
    write_morning(archive, [n for n in MORNING if "cut" in n or "flow" in n])
    await sync(store, archive)
    # 资金 is in all five posts: four stories (the cut and its rewrite are one)
    pages = [await search(store, "资金", limit=1, offset=i) for i in range(5)]
    assert [p.total for p in pages] == [4] * 5
    shown = [(h.post.id, h.post.reports) for p in pages for h in p.hits]
    assert len(shown) == 4 and not pages[4].hits
    reports = dict(shown)
    assert reports.get("2024-05-01-cut", reports.get("2024-05-01-cut-rewrite")) == 2
    assert ("2024-05-01-cut" in reports) != ("2024-05-01-cut-rewrite" in reports)  # the story once
    assert reports["2024-05-01-flow-20"] == reports["2024-05-01-flow-35"] == 1
    assert reports["2024-05-04-cut-again"] == 1
    whole = await search(store, "资金", limit=10)
    assert [(h.post.id, h.post.reports) for h in whole.hits] == shown  # pages agree with one page


async def test_window_setting_and_off(store: Store, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-cut-rewrite", CUT_REWRITE, "2024-05-01 13:00:00 +0800")
    await sync(store, archive, story_window_hours=0)  # grouping off
    assert await story_of(store, "2024-05-01-cut") != await story_of(store, "2024-05-01-cut-rewrite")


async def test_story_window_is_counted_from_the_first_report():
    # reports every 20 hours, each like the last: a chain never spans more than the window
    g = Grouper(window=48 * 3600, next_story=1)
    fp = fingerprint(*CUT)
    stories = [g.assign(rowid, rowid * 20 * 3600, fp) for rowid in range(1, 6)]
    assert stories[:3] == [stories[0]] * 3  # 0, 20 and 40 hours after the first report
    assert stories[3] != stories[0]  # 60 hours after it: a new story


async def test_incremental_join_edit_and_delete(store: Store, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-other", OTHER, "2024-05-01 10:10:00 +0800")
    await sync(store, archive)
    first = await story_of(store, "2024-05-01-cut")

    # a later sync brings a rewrite: it joins the stored story
    rewrite = write(archive, "2024-05-01-cut-rewrite", CUT_REWRITE, "2024-05-01 10:40:00 +0800")
    result = await sync(store, archive)
    assert result.added == 1
    assert await story_of(store, "2024-05-01-cut-rewrite") == first
    assert [p.id for p in await store.story_posts(first)] == ["2024-05-01-cut", "2024-05-01-cut-rewrite"]

    # the first report is deleted: the story goes on with the other report
    (archive.posts / "2024-05-01-cut.md").unlink()
    await sync(store, archive)
    assert [p.id for p in await store.story_posts(first)] == ["2024-05-01-cut-rewrite"]

    # the report is edited into another event: it leaves the story (and the story is empty)
    rewrite.unlink()
    write(archive, "2024-05-01-cut-rewrite", RATING_A, "2024-05-01 10:40:00 +0800")
    await sync(store, archive)
    assert await story_of(store, "2024-05-01-cut-rewrite") != first
    assert await store.story_posts(first) == []

    # an edit of a lone post leaves it alone
    write(
        archive,
        "2024-05-01-other",
        (OTHER[0], OTHER[1] + "细则自发布之日起施行。"),
        "2024-05-01 10:10:00 +0800",
    )
    await sync(store, archive)
    assert len(await store.story_posts(await story_of(store, "2024-05-01-other"))) == 1


async def test_a_report_of_two_stored_stories_joins_them(store: Store, archive: Archive):
    # two short flashes that are not alike enough, then the full report both are part of
    a = (
        "美众议院已有足够票数 允许加快提高债务上限程序",
        "美众议院已有足够票数，允许加快提高债务上限的程序。",
    )
    b = (
        "美众议院以222票支持212票反对通过债务上限议案",
        "美众议院以222票支持212票反对的结果通过为提高债务上限扫清道路的议案。",
    )
    c = (
        "美国会众议院通过法案 允许加快提高债务上限程序",
        "当地时间周二，美国国会众议院以222票支持、212票反对通过议案，允许加快提高债务上限的程序。",
    )
    write(archive, "2024-05-01-a", a, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-b", b, "2024-05-01 10:02:00 +0800")
    await sync(store, archive)
    sa, sb = await story_of(store, "2024-05-01-a"), await story_of(store, "2024-05-01-b")
    assert sa != sb
    write(archive, "2024-05-01-c", c, "2024-05-01 11:00:00 +0800")
    await sync(store, archive)
    assert await story_of(store, "2024-05-01-a") == sa  # the earlier story is kept
    assert await story_of(store, "2024-05-01-b") == sa
    assert await story_of(store, "2024-05-01-c") == sa


async def test_databases_from_before_stories_are_grouped(store: Store, archive: Archive):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 10:00:00 +0800")
    write(archive, "2024-05-01-cut-rewrite", CUT_REWRITE, "2024-05-01 10:40:00 +0800")
    await sync(store, archive)
    # as the 8 -> 9 migration leaves an existing database
    await store.conn.execute("DELETE FROM post_story")
    await store.set_meta("stories_stale", "1")
    post = await store.get_post("2024-05-01-cut")
    assert post is not None
    assert (await store.stories_of([post.rowid]))[post.rowid] == (-post.rowid, 1)  # its own story meanwhile
    await sync(store, archive)
    assert not await store.stories_stale()
    assert await story_of(store, "2024-05-01-cut") == await story_of(store, "2024-05-01-cut-rewrite") > 0


# --- a large sync groups in a process of its own --------------------------------------------------

DEBT = [
    ("美众议院已有足够票数 允许加快提高债务上限程序", "美众议院已有足够票数，允许加快提高债务上限的程序。"),
    (
        "美众议院以222票支持212票反对通过债务上限议案",
        "美众议院以222票支持212票反对的结果通过为提高债务上限扫清道路的议案。",
    ),
    (
        "美国会众议院通过法案 允许加快提高债务上限程序",
        "当地时间周二，美国国会众议院以222票支持、212票反对通过议案，允许加快提高债务上限的程序。",
    ),
]
FILLERS = [  # unrelated posts: nothing alike to group
    ("某地举办春季马拉松赛", "本届赛事吸引了来自各地的跑者参加，组委会提供了完善的补给服务。"),
    ("图书馆延长夜间开放时间", "为方便读者，市图书馆自下周起每晚开放至二十二点。"),
    ("新型电池材料研究取得进展", "研究团队开发出一种固态电解质，可提升储能密度并降低成本。"),
    ("铁路部门增开周末列车", "为应对客流高峰，铁路局将在周末加开多趟旅游专线列车。"),
    ("气象台发布大风蓝色预警", "受冷空气影响，沿海地区将出现阵风，请注意防范。"),
    ("博物馆推出青铜器特展", "展览汇集多件珍贵文物，观众可预约参观并聆听讲解。"),
    ("农业农村部部署夏粮收购", "各地要做好仓储准备，确保农民售粮顺畅、价格稳定。"),
    ("足球联赛第十轮战罢", "主队凭借下半场进球取胜，积分榜排名升至第三位。"),
    ("港口集装箱吞吐量创新高", "上月港口作业繁忙，外贸航线持续加密，装卸效率提升。"),
    ("高校发布招生简章", "今年计划新增人工智能等专业，报名方式与往年相同。"),
    ("城市公园完成改造重新开放", "改造后的公园增加了步道与儿童游乐设施，绿化面积扩大。"),
    ("保险业协会发布理赔报告", "报告显示线上理赔占比持续提高，平均结案时间缩短。"),
]


def write_day(archive: Archive, day: int) -> None:
    """One day of posts: the fixture events (same event rewritten, look-alikes, successive figures, a
    report of two flashes) among filler posts that report nothing alike."""
    d = f"2024-05-{day:02d}"
    for name, post, time in [
        ("cut", CUT, "08:00"),
        ("cut-rewrite", CUT_REWRITE, "08:40"),
        ("rating-a", RATING_A, "09:00"),
        ("rating-b", RATING_B, "09:05"),
        ("flow-20", FLOW_20, "10:00"),
        ("flow-35", FLOW_35, "11:00"),
        ("debt-a", DEBT[0], "12:00"),
        ("debt-b", DEBT[1], "12:02"),
        ("debt-c", DEBT[2], "13:00"),
    ]:
        write(archive, f"{d}-{name}", post, f"{d} {time}:00 +0800")
    for i, post in enumerate(FILLERS):
        write(archive, f"{d}-filler{i}", post, f"{d} {14 + i % 8}:{i:02d}:00 +0800")


async def partition(store: Store) -> set[frozenset[str]]:
    rows = await store._fetch("SELECT p.id, s.story FROM posts p JOIN post_story s ON s.rowid = p.rowid")
    stories: dict[int, set[str]] = {}
    for post_id, story in rows:
        stories.setdefault(story, set()).add(post_id)
    return {frozenset(ids) for ids in stories.values()}


@pytest.fixture
def small_batches(monkeypatch):
    """Make a sync of a few dozen posts a large one: parsing workers, a grouper process, many batches."""
    monkeypatch.setattr(sync_module, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(sync_module, "GROUP_APART_AT", 10)
    monkeypatch.setattr(sync_module, "CHUNK", 5)
    monkeypatch.setattr(sync_module, "BATCH", 6)
    started = []
    real = sync_module._Workers.grouping
    monkeypatch.setattr(
        sync_module._Workers, "grouping", lambda self, *a: started.append(a) or real(self, *a)
    )
    return started


async def test_a_large_sync_groups_in_a_process_of_its_own(tmp_path: Path, archive: Archive, small_batches):
    for day in (1, 4):
        write_day(archive, day)
    async with await Store.open(tmp_path / "apart.sqlite3") as apart:
        await sync_archive(apart, open_archive(archive.root), workers=2)
        assert len(small_batches) == 1  # grouped in a process of its own
        assert not await apart.stories_stale()
        got = await partition(apart)
    async with await Store.open(tmp_path / "here.sqlite3") as here:
        await sync_archive(here, open_archive(archive.root), workers=0)
        assert len(small_batches) == 1  # grouped in this process
        assert await partition(here) == got
    for day in (1, 4):
        d = f"2024-05-{day:02d}"
        assert frozenset({f"{d}-cut", f"{d}-cut-rewrite"}) in got
        assert frozenset({f"{d}-debt-a", f"{d}-debt-b", f"{d}-debt-c"}) in got
        for alone in ("rating-a", "rating-b", "flow-20", "flow-35", "filler0", "filler11"):
            assert frozenset({f"{d}-{alone}"}) in got
    assert len(got) == 2 * (1 + 1 + 4 + 12)


async def test_a_large_sync_groups_new_reports_with_stored_ones(
    store: Store, archive: Archive, small_batches
):
    write(archive, "2024-05-01-cut", CUT, "2024-05-01 08:00:00 +0800")
    await sync_archive(store, open_archive(archive.root), workers=2)  # one post: grouped here
    assert small_batches == []
    first = await story_of(store, "2024-05-01-cut")
    write(archive, "2024-05-01-cut-rewrite", CUT_REWRITE, "2024-05-01 08:40:00 +0800")
    write_day(archive, 5)  # and the same events again, days later: other stories
    await sync_archive(store, open_archive(archive.root), workers=2)
    assert len(small_batches) == 1
    assert await story_of(store, "2024-05-01-cut-rewrite") == first
    assert await story_of(store, "2024-05-05-cut") == await story_of(store, "2024-05-05-cut-rewrite") != first


async def test_a_sync_that_stops_with_its_grouping_behind_is_regrouped(
    store: Store, archive: Archive, small_batches, monkeypatch
):
    write_day(archive, 1)

    async def never(self, behind):  # the grouper's results never arrive: every batch is written behind
        return [], True

    async def stop(self):
        raise RuntimeError("the sync stops here")

    monkeypatch.setattr(sync_module._StoryWindow, "_take", never)
    monkeypatch.setattr(sync_module._StoryWindow, "finish", stop)
    with pytest.raises(RuntimeError):
        await sync_archive(store, open_archive(archive.root), workers=2)
    assert await store.stories_stale()
    assert await store.count_posts() == 21
    monkeypatch.undo()
    result = await sync_archive(store, open_archive(archive.root), workers=0)
    assert result.unchanged == 21  # the posts were written; their stories are made anew
    assert not await store.stories_stale()
    assert await story_of(store, "2024-05-01-cut") == await story_of(store, "2024-05-01-cut-rewrite")


async def test_a_sync_goes_on_when_its_grouper_process_fails(
    store: Store, archive: Archive, small_batches, monkeypatch, caplog
):
    write_day(archive, 1)
    # a "process" whose grouper was never set up: every task it runs fails, as a killed process would
    monkeypatch.setattr(
        sync_module._Workers, "grouping", lambda self, *a: small_batches.append(a) or ThreadPoolExecutor(1)
    )
    result = await sync_archive(store, open_archive(archive.root), workers=2)
    assert len(small_batches) == 1
    assert result.added == 21 and not result.errors  # every post is written
    assert await store.stories_stale()
    assert "story grouping stopped" in caplog.text
    await sync_archive(store, open_archive(archive.root), workers=0)  # groups them
    assert not await store.stories_stale()
    assert await story_of(store, "2024-05-01-cut") == await story_of(store, "2024-05-01-cut-rewrite")


class _HeldGrouper(ThreadPoolExecutor):
    """The grouper's real work (store.stories.process_*) in a thread, each task held until `gate` opens:
    a grouper process that is still behind when the sync has written its last post."""

    def __init__(self, gate: threading.Event, window: int, next_story: int):
        super().__init__(max_workers=1, initializer=process_start, initargs=(window, next_story))
        self.gate = gate

    def submit(self, fn, /, *args, **kwargs):
        def held():
            self.gate.wait(timeout=10)  # (a sync that never merges then fails the test, not hangs)
            return fn(*args, **kwargs)

        return super().submit(held)


async def test_an_unmerged_load_merges_its_index_while_its_grouper_catches_up(
    tmp_path: Path, archive: Archive, small_batches, monkeypatch
):
    """The bot's large syncs leave their index merge for later (merge=False); the time the sync then
    waits for its grouper to catch up goes to the merge's first steps, and grouping gives the same
    stories as in-process."""
    for day in (1, 4):
        write_day(archive, day)
    monkeypatch.setattr(sync_module, "BULK_LOAD_AT", 10)
    gate = threading.Event()

    def grouping(self, window, next_story):
        small_batches.append((window, next_story))
        self._grouping = self._grouping or _HeldGrouper(gate, window, next_story)
        return self._grouping

    monkeypatch.setattr(sync_module._Workers, "grouping", grouping)
    async with await Store.open(tmp_path / "apart.sqlite3") as store:
        real_step = store._merge_step
        steps: list[tuple[bool, int]] = []  # (stories still behind, posts) at each merge step

        async def step(pages):
            steps.append((await store.stories_stale(), await store.count_posts()))
            gate.set()  # the grouper catches up from here
            return await real_step(pages)

        monkeypatch.setattr(store, "_merge_step", step)
        result = await sync_archive(store, open_archive(archive.root), workers=2, merge=False)
        assert len(small_batches) == 1
        assert result.added == 42
        assert steps and steps[0] == (True, 42)  # every post written, their stories behind: merging
        assert 0 < result.searchable <= result.seconds
        assert not await store.stories_stale()
        got = await partition(store)
        await store.merge_index()  # the rest, as the bot goes on after the sync
        assert not await store.merge_pending()
    async with await Store.open(tmp_path / "here.sqlite3") as here:
        await sync_archive(here, open_archive(archive.root), workers=0)
        assert await partition(here) == got


# --- quality on the real archive -------------------------------------------------------------------

LABELS = Path(__file__).parent / "data" / "finews_stories.json"


def pair_quality(stories: dict[str, int], labels: dict) -> tuple[float, float, int, int, int]:
    """Pairwise precision and recall of story ids against the labels: (P, R, true pos., false pos.,
    false neg.)."""
    same = {frozenset(p) for g in labels["same"] for p in itertools.combinations(g, 2)}
    ambiguous = {frozenset(p) for g in labels["ambiguous"] for p in itertools.combinations(g, 2)} - same
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(stories), 2):
        pair = frozenset((a, b))
        if pair in ambiguous:
            continue
        grouped = stories[a] == stories[b]
        if grouped and pair in same:
            tp += 1
        elif grouped:
            fp += 1
        elif pair in same:
            fn += 1
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), tp, fp, fn


@pytest.mark.skipif(not (CORPUS / "finews" / "_posts").is_dir(), reason="shared corpus not present")
async def test_labelled_finews_pairs(tmp_path: Path):
    labels = json.loads(LABELS.read_text(encoding="utf-8"))
    async with await Store.open(tmp_path / "finews.sqlite3") as store:
        await sync_archive(store, open_archive(CORPUS / "finews"), workers=1)
        rows = await store._fetch("SELECT p.id, s.story FROM posts p JOIN post_story s ON s.rowid = p.rowid")
    stories = {r[0]: r[1] for r in rows}
    labelled = {i for g in labels["same"] + labels["ambiguous"] for i in g}
    assert labelled <= set(stories)  # the labels name real posts
    precision, recall, tp, fp, fn = pair_quality(stories, labels)
    print(f"finews stories: precision {precision:.2f} recall {recall:.2f} (tp {tp}, fp {fp}, fn {fn})")
    assert precision >= 0.95
    assert recall >= 0.8


def test_pair_quality_counts():
    labels = {"same": [["a", "b", "c"]], "ambiguous": [["c", "d"]]}
    # a, b together; c alone; d with a (a false merge); c-d ambiguous
    p, r, tp, fp, fn = pair_quality({"a": 1, "b": 1, "c": 2, "d": 1}, labels)
    assert (tp, fp, fn) == (1, 2, 2)


@given(st.text(max_size=40))
def test_bigram_codes_are_the_text_s_character_pairs(text: str):
    pairs = {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())

    def code(pair: str) -> int:  # the two code points, the first in the low 32 bits
        return ord(pair[0]) | (ord(pair[1]) << 32) if len(pair) == 2 else ord(pair)

    assert _bigrams(text) == {code(p) for p in pairs}
