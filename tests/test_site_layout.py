"""Which files of a Jekyll site are its posts: every `_posts` folder of the site, as Jekyll finds them
(`news/_posts/` gives its posts the category news), minus what the site excludes."""

from __future__ import annotations

import fnmatch
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.jekyll import DEFAULT_EXCLUDES, DEFAULT_INCLUDES, ArchiveError, Walk, iter_post_files, open_archive
from store.sync import sync_archive

from .conftest import sync


async def paths(store) -> list[str]:
    return sorted(r[0] for r in await store._fetch("SELECT path FROM posts"))


def walked(archive) -> list[str]:
    return sorted(rel for rel, _, _ in iter_post_files(open_archive(archive.root)))


async def test_posts_in_the_sites_folders_are_read_with_the_folders_as_first_categories(store, archive):
    archive.post("2024-05-01-root.md", "根目录", "正文。", categories="markets")
    archive.post("2024-05-02-world.md", "国际", "正文。", categories="markets", folder="news/_posts")
    archive.post("2024/2024-05-03-deep.md", "深层", "正文。", categories="news", folder="news/tech/_posts")
    archive.write("about.md", "---\ntitle: 关于\n---\n\n一个页面。\n", folder="news")  # a page: no post
    for hidden in ("_drafts/_posts", ".git/_posts", "#tmp/_posts", "old~/_posts", "node_modules/x/_posts"):
        archive.post("2024-05-04-not.md", "不是文章", "正文。", folder=hidden)
    result = await sync(store, archive)
    assert (result.added, result.skipped) == (3, 0)
    assert await paths(store) == [
        "_posts/2024-05-01-root.md",
        "news/_posts/2024-05-02-world.md",
        "news/tech/_posts/2024/2024-05-03-deep.md",
    ]
    world = await store.get_post("2024-05-02-world")
    assert world.categories == ["news", "markets"]
    # the folders are categories for the permalink too, as on the site
    assert world.archive_url == "https://news.example.org/news/markets/2024/05/01/world.html"
    assert (await store.get_post("2024-05-03-deep")).categories == ["news", "tech"]
    assert (await store.get_post("2024-05-01-root")).categories == ["markets"]


async def test_an_archive_whose_posts_are_all_in_folders_is_an_archive(store, tmp_path, archive):
    archive.posts.rmdir()
    archive.post("2024-05-01-en.md", "English", "Text.", folder="en/_posts")
    archive.post("2024-05-01-zh.md", "中文", "正文。", folder="zh/_posts")
    assert (await sync(store, archive)).added == 2
    assert (await store.get_post("2024-05-01-zh")).categories == ["zh", "news"]
    (archive.root / "_config.yml").unlink()  # neither _posts nor _config.yml: not a Jekyll site
    with pytest.raises(ArchiveError, match="no _posts folder or _config.yml"):
        open_archive(archive.root)


async def test_what_the_config_excludes_is_not_read_and_leaves_the_index(store, archive):
    archive.post("2024-05-01-keep.md", "保留", "正文。")
    archive.post("2019-01-01-old.md", "旧文", "正文。")
    archive.post("2024-05-02-a.md", "归档", "正文。", folder="old/_posts")
    archive.post("2024-05-03-b.md", "同名前缀", "正文。", folder="oldies/_posts")
    archive.post("2024-05-04-c.md", "草稿", "正文。", folder="news/drafts/_posts")
    archive.post("2024-05-05-d.md", "新闻", "正文。", folder="news/_posts")
    archive.post("2024/2024-05-06-e.md", "任何地方", "正文。", folder="news/_posts")
    assert (await sync(store, archive)).added == 7
    archive.config(
        "url: https://news.example.org\ntimezone: Asia/Shanghai\n"
        "exclude: [/old, '_posts/2019-*', 'news/*/_posts', '*-e.md', 42]\n"
    )
    result = await sync_archive(store, open_archive(archive.root), workers=1, allow_mass_delete=True)
    assert result.deleted == 5
    # `old` leaves out `oldies/` too: Jekyll matches a plain pattern as a prefix of the path
    assert await paths(store) == ["_posts/2024-05-01-keep.md", "news/_posts/2024-05-05-d.md"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("old", "must be a list, not a str"), ("{a: 1}", "must be a list, not a dict")],
)
def test_an_exclude_that_is_not_a_list_is_refused_as_jekyll_does(archive, value, message):
    archive.config(f"exclude: {value}\n")
    with pytest.raises(ArchiveError, match=message):
        open_archive(archive.root)


def test_an_exclude_of_too_many_entries_is_refused(archive):
    archive.config("exclude: [" + ", ".join(f"f{i}" for i in range(1001)) + "]\n")
    with pytest.raises(ArchiveError, match="over 1000 entries"):
        open_archive(archive.root)


async def test_what_the_config_includes_is_read_although_special_or_excluded(store, archive):
    # (`include:` was not read: posts in an underscore folder the site includes were missing)
    archive.post("2024-05-01-keep.md", "保留", "正文。")
    archive.post("2024-05-02-a.md", "归档", "正文。", folder="_archive/_posts")
    archive.post("_pinned.md", "置顶", "正文。", extra="date: 2024-05-03")
    archive.post("2024-05-04-b.md", "旧的", "正文。", folder="old/_posts")
    archive.config("exclude: [old]\ninclude: [_archive, _pinned.md]\n")
    assert (await sync(store, archive)).added == 3
    assert await paths(store) == [
        "_archive/_posts/2024-05-02-a.md",
        "_posts/2024-05-01-keep.md",
        "_posts/_pinned.md",
    ]
    (post,) = [p for p in await store.latest(5) if p.title == "归档"]
    assert post.categories == ["_archive", "news"]  # the folder's name first, as Jekyll's path categories
    for value, message in (
        ("_archive", "must be a list, not a str"),
        ("{a: 1}", "must be a list, not a dict"),
    ):
        archive.config(f"include: {value}\n")
        with pytest.raises(ArchiveError, match=message):
            open_archive(archive.root)


def test_jekylls_own_excludes_stay_with_the_sites(archive):
    archive.post("2024-05-01-a.md", "供应商", "正文。", folder="vendor/bundle/gems/_posts")
    archive.post("2024-05-01-b.md", "供应商", "正文。", folder="vendor/mine/_posts")
    archive.config("exclude: [other]\n")
    assert walked(archive) == ["vendor/mine/_posts/2024-05-01-b.md"]


async def test_collections_dir_holds_the_posts_folders(store, archive):
    archive.post("2024-05-01-root.md", "不读", "正文。")  # Jekyll reads no _posts outside collections_dir
    archive.post("2024-05-02-a.md", "集合", "正文。", folder="content/_posts")
    archive.post("2024-05-03-b.md", "集合分类", "正文。", folder="content/news/_posts")
    archive.config("url: https://news.example.org\ncollections_dir: ./content/\n")
    assert (await sync(store, archive)).added == 2
    assert await paths(store) == ["content/_posts/2024-05-02-a.md", "content/news/_posts/2024-05-03-b.md"]
    # the folder below collections_dir, and the post's own `categories: news`: one name once
    assert (await store.get_post("2024-05-03-b")).categories == ["news"]
    # front matter defaults are matched from collections_dir too, named with it or not, as in Jekyll
    archive.config(
        "url: https://news.example.org\ncollections_dir: content\ndefaults:\n"
        "  - {scope: {path: news}, values: {tags: [新闻]}}\n"
        "  - {scope: {path: content/_posts}, values: {tags: [集合]}}\n"
    )
    assert (await sync(store, archive)).updated == 2
    assert [(await store.get_post(i)).tags for i in ("2024-05-02-a", "2024-05-03-b")] == [["集合"], ["新闻"]]
    archive.config("collections_dir: ../elsewhere\n")
    with pytest.raises(ArchiveError, match="collections_dir"):
        open_archive(archive.root)


def test_a_folder_reached_by_a_link_and_its_own_path_is_read_through_its_own(archive):
    archive.post("2024-05-01-a.md", "新闻", "正文。", folder="news/_posts")
    os.symlink("news", archive.root / "a-link")  # listed first, walked after every real folder
    os.symlink("../_posts", archive.root / "news" / "b-link")
    os.symlink("../news/_posts", archive.root / "_posts" / "c-link")
    os.symlink("..", archive.root / "news" / "up")  # a loop: walked once
    archive.post("2024-05-02-b.md", "根", "正文。")
    for _ in range(3):
        assert walked(archive) == ["_posts/2024-05-02-b.md", "news/_posts/2024-05-01-a.md"]


def test_a_posts_folder_linked_from_outside_the_archive_is_reported(archive, tmp_path):
    outside = tmp_path / "elsewhere" / "_posts"
    outside.mkdir(parents=True)
    (outside / "2024-05-01-x.md").write_text("---\ntitle: x\ndate: 2024-05-01\n---\n\nx\n")
    (archive.root / "news").mkdir()
    os.symlink(outside, archive.root / "news" / "_posts")
    os.symlink(tmp_path / "elsewhere", archive.root / "assets")  # a site's shared assets: not a problem
    walk = Walk()
    assert list(iter_post_files(open_archive(archive.root), walk)) == []
    assert walk.problems == [("news/_posts", "symlink to outside the archive (not followed)")]


def test_the_root_posts_folder_may_still_be_a_link_to_elsewhere(archive, tmp_path):
    outside = tmp_path / "store" / "posts"
    outside.mkdir(parents=True)
    (outside / "2024-05-01-x.md").write_text("---\ntitle: x\ndate: 2024-05-01\n---\n\nx\n")
    archive.posts.rmdir()
    os.symlink(outside, archive.posts)
    # named from its real folder, as before the site's other _posts folders were read (new names would
    # make every post of such an archive new at the upgrade)
    assert walked(archive) == ["../store/posts/2024-05-01-x.md"]
    assert walked(archive) == [rel for rel, _, _ in iter_post_files(open_archive(archive.posts))]


def test_an_archive_given_as_its_posts_folder_is_that_folder_alone(archive):
    archive.post("2024-05-01-a.md", "根", "正文。")
    archive.post("2024-05-02-b.md", "新闻", "正文。", folder="news/_posts")
    # (the folder above may be anything: a home folder, a mounted volume)
    assert [rel for rel, _, _ in iter_post_files(open_archive(archive.posts))] == ["_posts/2024-05-01-a.md"]
    assert walked(archive) == ["_posts/2024-05-01-a.md", "news/_posts/2024-05-02-b.md"]


async def test_an_unreadable_site_folder_is_reported_only_when_it_held_posts(store, archive, monkeypatch):
    import store.jekyll as jekyll

    archive.post("2024-05-01-a.md", "根", "正文。")
    archive.post("2024-05-02-b.md", "新闻", "正文。", folder="news/_posts")
    (archive.root / "lost+found").mkdir()  # a volume's own folder, unreadable by the bot's user
    assert (await sync(store, archive)).added == 2
    real_scandir = os.scandir

    def failing(path):
        if str(path).endswith(("lost+found", "news")):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(jekyll.os, "scandir", failing)
    result = await sync(store, archive)
    # news/ held a post: kept and reported; lost+found never held one: not a problem at every sync
    assert [e["path"] for e in result.errors] == ["news/"] and "its posts are kept" in result.errors[0][
        "reason"
    ]
    assert (result.deleted, await store.count_posts()) == (0, 2)


async def test_an_unreadable_archive_root_keeps_every_post(store, archive, monkeypatch):
    import store.jekyll as jekyll

    archive.post("2024-05-01-a.md", "根", "正文。")
    assert (await sync(store, archive)).added == 1
    real_scandir = os.scandir
    root = str(archive.root.resolve())

    def failing(path):
        if str(path) == root:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(jekyll.os, "scandir", failing)
    result = await sync(store, archive)
    assert [e["path"] for e in result.errors] == ["./"] and (result.deleted, result.refused_deletes) == (0, 0)


# A generated site: folders (a name -> a folder) and files, the names drawn from what Jekyll treats apart
_FOLDER_NAMES = (
    ["_posts"] * 4 + ["news"] * 2 + ["a", ".git", "_drafts", "node_modules", "old~", "#x", "oldies"]
)
_FILE_NAMES = ["2024-05-01-a.md", "2024-05-02-b.html", "notes.txt", ".h.md", "_u.md", "c.md~"]
_EXCLUDES = ["old", "a/_posts/2024-05-02-*", "*/node_modules/*"]
_INCLUDES = ["_drafts", "_u", ".h.md", "old", "*~", "#*"]
_sites = st.recursive(
    st.fixed_dictionaries({"files": st.lists(st.sampled_from(_FILE_NAMES), unique=True, max_size=3)}),
    lambda inner: st.fixed_dictionaries(
        {
            "files": st.lists(st.sampled_from(_FILE_NAMES), unique=True, max_size=3),
            "folders": st.dictionaries(st.sampled_from(_FOLDER_NAMES), inner, max_size=3),
        }
    ),
    max_leaves=20,
)


def _build(folder, spec) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in spec["files"]:
        (folder / name).write_text("---\ntitle: t\n---\nx\n")
    for name, sub in spec.get("folders", {}).items():
        _build(folder / name, sub)


def _jekylls_posts(spec, excludes, includes=(), path="", in_posts=False) -> list[str]:
    """The files Jekyll reads as posts, from the description of the site alone. An included name (the
    name alone, as a prefix or a glob) is read although it is special or excluded."""

    def left_out(rel: str) -> bool:
        return any(
            rel.startswith(p) if not any(c in p for c in "*?[") else fnmatch.fnmatchcase(rel, p)
            for p in excludes
        )

    def included(name: str) -> bool:
        return any(name.startswith(p) or fnmatch.fnmatchcase(name, p) for p in includes)

    def special(name: str) -> bool:
        return name.startswith((".", "_", "#")) or name.endswith("~")

    out = []
    for name in spec["files"]:
        rel = path + name
        kept = included(name) or (not special(name) and not left_out(rel))
        if in_posts and kept and name.endswith((".md", ".html")):
            out.append(rel)
    for name, sub in spec.get("folders", {}).items():
        rel = path + name
        opens_posts = name == "_posts" and not in_posts
        if not included(name) and (
            (special(name) and not opens_posts) or name.endswith("~") or left_out(rel + "/")
        ):
            continue
        out += _jekylls_posts(sub, excludes, includes, rel + "/", in_posts or opens_posts)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    site=_sites.filter(lambda site: "folders" in site),
    excludes=st.lists(st.sampled_from(_EXCLUDES), unique=True),
    includes=st.none() | st.lists(st.sampled_from(_INCLUDES), unique=True),
)
def test_the_walk_reads_what_jekyll_reads_for_any_site(tmp_path_factory, site, excludes, includes):
    root = tmp_path_factory.mktemp("site")
    _build(root, site)
    config = "exclude: [" + ", ".join(f"'{p}'" for p in excludes) + "]\n"
    if includes is not None:
        config += "include: [" + ", ".join(f"'{p}'" for p in includes) + "]\n"
    (root / "_config.yml").write_text(config)
    walked = sorted(rel for rel, _, _ in iter_post_files(open_archive(root)))
    jekylls = _jekylls_posts(
        site, [*excludes, *DEFAULT_EXCLUDES], DEFAULT_INCLUDES if includes is None else includes
    )
    assert walked == sorted(jekylls)
