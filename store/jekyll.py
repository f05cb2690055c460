"""Jekyll archives: find the posts, read `_config.yml`, parse one post into a `Post`.

Parsing is pure and picklable so a sync can run it in worker processes.
"""

from __future__ import annotations

import email.utils
import errno
import fnmatch
import os
import re
import stat
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from frontmatter.default_handlers import YAMLHandler

from .text import (
    body_to_paragraphs,
    escaped_controls,
    extract_source_links,
    has_controls,
    is_utf8,
    leading_digest,
    summarize,
    truncate,
    without_controls,
)

POST_EXTENSIONS = (".md", ".markdown", ".mkd", ".mkdn", ".html", ".htm")
_FILENAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
_DATE_STR = re.compile(
    r"^\s*(\d{4})([-/.])(\d{1,2})\2(\d{1,2})"
    r"(?:[ \tT]+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d*))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2}|[+-]\d{1,2}(?::\d{2})?)?\s*$",
    re.I,
)
_PERMALINK_STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}
_PLACEHOLDER = re.compile(r":([a-z_]+)")
MAX_FUTURE = timedelta(days=366)
# Raise it with a change here that changes what a post file gives (its title, date, summary, URL…): the
# next sync then reads every stored post again (store.sync: what posts were read with). 2: categories and
# slugs as Jekyll makes them; 3: front-matter values of any shape as text (lists, booleans, numbers,
# timestamps), permalinks' own text encoded, control characters dropped
READER_VERSION = 3
# A title is cut to this many characters (real ones: under 50 in both real archives). A scraper that puts
# a whole article into the title would otherwise cost the sync dearly: three titles of 500,000 characters
# took a 203-post sync from 0.3 to 5.4 s and 108 to 565 MB (story fingerprints hold every character
# pair of a title, the titles' index every character).
MAX_TITLE_CHARS = 1000
_SOURCE_KEYS = ("source", "source_url", "link", "original_url", "origin", "url")


class ArchiveError(Exception):
    """The archive as a whole cannot be used (missing folder, unreadable config)."""


class PostError(Exception):
    """One post cannot be indexed; the message is the reason shown to the user. `kind`: "error", or what
    is not one (a sync reports those apart); `until`: when the same bytes may give a post (a POSIX time),
    or None: only once they change."""

    kind = "error"
    until: float | None = None


class PostNotYet(PostError):
    """A post that cannot be indexed now but may be later without changing (dated too far ahead): a sync
    looks at it again once `until` (a POSIX time) has come, or when it changes."""

    def __init__(self, reason: str, until: float):
        super().__init__(reason)
        self.until = until


class PostUnpublished(PostError):
    """A post its editors marked `published: false`: not an error, and not to be served (a post indexed
    before is taken out, as a deleted one)."""

    kind = "unpublished"


class PostHeld(PostNotYet):
    """A post dated in the future, which Jekyll does not publish before its date (`future: false`, its
    default): not an error, it is indexed (and pushed) at the first sync after its date."""

    kind = "held"


# --- YAML that survives real archives ------------------------------------------------------------

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ArchiveYAMLLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A safe loader that reads Python-specific tags as plain data.

    Archives written by Python tools contain `!!python/unicode 'x'` and `!!python/str 'x'`; a plain
    safe load rejects them. Here every unknown tag is built from its node as plain data (a string,
    list or mapping); nothing is ever instantiated.
    """


def _construct_plain(loader: yaml.SafeLoader, suffix_or_node: Any, node: Any = None) -> Any:
    if node is None:
        node, tag = suffix_or_node, suffix_or_node.tag
    else:
        tag = str(suffix_or_node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    value = loader.construct_scalar(node)
    kind = tag.rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    try:
        if kind in ("int", "long"):
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "bool":
            return value.strip().lower() in ("true", "yes", "on", "1")
        if kind == "none":
            return None
    except ValueError:
        pass
    return value


def _construct_timestamp(loader: yaml.SafeLoader, node: Any) -> Any:
    """A timestamp as the text it is written as: dates are read from text by `parse_date` (the fast path
    gives text too, so both read a post alike), a title or tag that looks like a date is shown as
    written, and one that is no real date (`2021-02-30`, `0000-00-00`) does not fail the whole front
    matter (Ruby's YAML, which Jekyll uses, keeps it as text too)."""
    return loader.construct_scalar(node)


ArchiveYAMLLoader.add_multi_constructor("tag:yaml.org,2002:python/", _construct_plain)
ArchiveYAMLLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
ArchiveYAMLLoader.add_constructor(None, _construct_plain)


MAX_YAML_NODES = 10_000


def _check_node_graph(root: Any) -> None:
    """Refuse YAML aliases before anything is built from them: an alias is a node reached twice, and a
    "billion laughs" front matter of a few hundred bytes expands to gigabytes when built and printed.
    Front matter of real posts never needs them. Also caps the number of nodes."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise PostError("front matter uses YAML aliases (*name), which are not accepted")
        seen.add(id(node))
        if len(seen) > MAX_YAML_NODES:
            raise PostError(f"front matter too large (over {MAX_YAML_NODES} YAML nodes)")
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


class ArchiveYAMLHandler(YAMLHandler):
    def load(self, fm: str, **kwargs: object) -> Any:
        loader = ArchiveYAMLLoader(fm)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_node_graph(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()


_HANDLER = ArchiveYAMLHandler()

# Fast path for the common front matter of scraped archives: only `key: value` lines whose value is a
# plain word-ish scalar or a simple quoted string. Such a block means the same under YAML, except that
# YAML would type timestamps; values here stay strings, which every consumer below accepts (dates are
# parsed from strings; booleans, nulls and numbers are not taken by the fast path at all).
# Anything else goes through YAML. tests/test_parse.py checks both paths agree on real archives.
_SIMPLE_LINE = re.compile(
    r"""^([A-Za-z_][A-Za-z0-9_-]*):(?:[ \t]+(?:"([^"\\]*)"|'([^']*)'|([^\s\-?:,\[\]{}#&*!|>'"%@`](?:[^#:]|:(?!\s|$)|(?<!\s)#)*?)))?[ \t]*$"""
)
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "~", "y", "n"})
# YAML's own rules for what a plain scalar is: a number in YAML 1.1 is not always its text (`0x1F`, `017`,
# `1_000`, `10:30` are 31, 15, 1000 and 630; `.inf` is inf), so such a value goes through YAML
_RESOLVER = yaml.resolver.Resolver()
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_NUMBERISH = re.compile(r"[-+]?\.?[0-9][0-9a-fA-FxXoObB_.:,eE+-]*|[-+]?\.(?:inf|Inf|INF|nan|NaN|NAN)")


def fast_front_matter(text: str) -> dict[str, Any] | None:
    """Parse a block of simple `key: value` lines; None when YAML is needed."""
    meta: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _SIMPLE_LINE.match(line)
        if m is None:
            return None
        key, dq, sq, plain = m.groups()
        if dq is not None:
            value: Any = dq
        elif sq is not None:
            value = sq
        elif plain is not None:
            if plain.lower() in _YAML_WORDS:
                return None
            if (
                _NUMBERISH.fullmatch(plain)
                and _RESOLVER.resolve(yaml.ScalarNode, plain, (True, False)) in _NUMBER_TAGS
            ):
                return None
            value = plain
        else:
            value = None
        meta[key] = value
    return meta


# --- the archive -------------------------------------------------------------------------------


# Jekyll (4) leaves these out of every site, whatever `exclude` says
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".sass-cache",
    ".jekyll-cache",
    "gemfiles",
    "Gemfile",
    "Gemfile.lock",
    "node_modules",
    "vendor/bundle/",
    "vendor/cache/",
    "vendor/gems/",
    "vendor/ruby/",
)
MAX_EXCLUDES = 1000
# `include` of Jekyll's own config: names it reads although they start with `.`, `_` or `#`, end with `~` or
# are excluded (a site's own list replaces it)
DEFAULT_INCLUDES: tuple[str, ...] = (".htaccess",)


@dataclass(frozen=True)
class ArchiveConfig:
    root: Path
    posts_dir: Path
    site_url: str = ""  # url + baseurl, no trailing slash
    timezone: str = "UTC"
    permalink: str = _PERMALINK_STYLES["date"]
    summary_chars: int = 200
    max_post_bytes: int = 2 << 20  # bigger post files are skipped (0: no limit)
    story_window_hours: int = 48  # reports of one event within this window form a story (0: off)
    # "common": pairs of the archive's most common characters are indexed; "all": every adjacent pair;
    # "auto": "all" when the archive's posts are long, else "common" (store.segment.pair_chars)
    search_pairs: str = "all"
    pair_chars: str = ""  # the database's pair characters (store.segment), set by the sync
    # `future` in _config.yml: Jekyll publishes posts dated in the future only when it is true (its
    # default is false); other posts are held until their date (PostHeld)
    future: bool = False
    # `defaults` in _config.yml that apply to posts, in the order they take precedence (the last wins):
    # (scope path, its values as (key, value) pairs); a post's own front matter wins over them all
    defaults: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    # what the site leaves out (`exclude` in _config.yml, with Jekyll's own): paths from the root, or globs
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    # `include` in _config.yml: names (at any depth, as Jekyll matches them) read all the same
    include: tuple[str, ...] = DEFAULT_INCLUDES
    # `collections_dir` in _config.yml: the folder below the root that holds the `_posts` folders
    collections_dir: str = ""
    # the archive was given as its _posts folder: that folder alone is read (its site may be a folder of
    # other things: a home folder, a mounted volume), not every _posts folder of the site
    posts_only: bool = False

    @property
    def roots(self) -> tuple[str, str]:
        """The folders a post file's real path must lie in: the archive root, and its `_posts` (which
        may be a symlink to elsewhere)."""
        return str(self.root), str(self.posts_dir)

    @property
    def site_dir(self) -> Path:
        """Where the walk looks for `_posts` folders: the root, or its `collections_dir`."""
        return self.root / self.collections_dir if self.collections_dir else self.root

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def open_archive(
    path: str | os.PathLike[str],
    *,
    site_url: str | None = None,
    timezone_name: str | None = None,
    permalink: str | None = None,
    summary_chars: int = 200,
    max_post_bytes: int = 2 << 20,
    story_window_hours: int = 48,
    search_pairs: str = "all",
) -> ArchiveConfig:
    """Locate the archive and read `_config.yml`. Explicit arguments override the config file.

    `path` is the archive root (a folder with `_posts/`, or with a `_config.yml`: a site whose posts are
    all in `<folder>/_posts/` folders) or its `_posts` folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ArchiveError(f"archive not found: {p}")
    if not p.is_dir():
        raise ArchiveError(f"archive is not a folder: {p}")
    posts_only = p.name == "_posts"
    if posts_only:
        root = p.parent
    elif (p / "_posts").is_dir() or (p / "_config.yml").is_file():
        root = p
    else:
        raise ArchiveError(
            f"no _posts folder or _config.yml in {p} (give the archive root or its _posts folder)"
        )

    config: dict[str, Any] = {}
    future = False
    defaults: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    exclude, include = DEFAULT_EXCLUDES, DEFAULT_INCLUDES
    cfg_file = root / "_config.yml"
    if cfg_file.is_file():
        try:
            if cfg_file.stat().st_size > MAX_CONFIG_BYTES:
                raise ArchiveError(
                    f"cannot use {cfg_file}: over {MAX_CONFIG_BYTES >> 20} MB (a Jekyll config is a few KB)"
                )
            loaded = yaml.load(cfg_file.read_text(encoding="utf-8"), Loader=ArchiveYAMLLoader)
        except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
            raise ArchiveError(f"cannot read {cfg_file}: {_one_line(exc)}") from exc
        if isinstance(loaded, dict):
            config = {key: _config_text(cfg_file, key, loaded.get(key)) for key in _CONFIG_KEYS}
            # as Jekyll (Ruby) reads it: anything but null or false is true
            future = (value := loaded.get("future")) is not None and value is not False
            defaults = _post_defaults(cfg_file, loaded.get("defaults"))
            exclude = _excludes(cfg_file, loaded.get("exclude"))
            include = _includes(cfg_file, loaded.get("include"))

    if site_url is None:
        url = (config.get("url") or "").rstrip("/")
        baseurl = (config.get("baseurl") or "").strip("/")
        site_url = f"{url}/{baseurl}" if baseurl else url
    tz_name = timezone_name or config.get("timezone") or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ArchiveError(f"unknown time zone {tz_name!r}") from exc
    style = permalink or config.get("permalink") or "date"
    collections = _collections_dir(cfg_file, config.get("collections_dir"))
    posts = root / collections / "_posts" if collections else root / "_posts"
    if posts_only:
        posts = p
    if posts.is_dir() and not os.access(posts, os.R_OK | os.X_OK):
        raise ArchiveError(f"cannot read {posts}")
    return ArchiveConfig(
        root=root.resolve(),
        posts_dir=posts.resolve(),
        site_url=site_url.rstrip("/"),
        timezone=tz_name,
        permalink=_PERMALINK_STYLES.get(style, style),
        summary_chars=summary_chars,
        max_post_bytes=max_post_bytes,
        story_window_hours=story_window_hours,
        search_pairs=search_pairs,
        future=future,
        defaults=defaults,
        exclude=exclude,
        include=include,
        collections_dir=collections,
        posts_only=posts_only,
    )


def _patterns(path: Path, key: str, value: Any) -> list[str] | None:
    """The text items of `exclude` or `include` in _config.yml (None when unset). As Jekyll, a list is
    required (it refuses to build the site otherwise) and items that are not text are ignored."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ArchiveError(f"cannot use {path}: `{key}` must be a list, not a {type(value).__name__}")
    if len(value) > MAX_EXCLUDES:
        raise ArchiveError(f"cannot use {path}: `{key}` has over {MAX_EXCLUDES} entries")
    return [item for item in value if isinstance(item, str)]


def _excludes(path: Path, value: Any) -> tuple[str, ...]:
    """`exclude` of _config.yml with Jekyll's own (which Jekyll 4 adds to any list)."""
    items = _patterns(path, "exclude", value)
    if items is None:
        return DEFAULT_EXCLUDES
    return tuple(dict.fromkeys(item for item in (*map(_relative, items), *DEFAULT_EXCLUDES) if item))


def _includes(path: Path, value: Any) -> tuple[str, ...]:
    """`include` of _config.yml, which replaces Jekyll's own."""
    items = _patterns(path, "include", value)
    if items is None:
        return DEFAULT_INCLUDES
    return tuple(dict.fromkeys(item.lstrip("/") for item in items if item.strip("/")))


class _Inclusion:
    """Whether an entry's name is in `include`, as Jekyll's entry filter matches it: the name alone
    (whatever folder it is in), against each pattern as a glob or as a prefix (`_arch` takes `_archive`)."""

    def __init__(self, patterns: tuple[str, ...]):
        self.prefixes = patterns
        self.rx = _globs(list(patterns))

    def __call__(self, name: str) -> bool:
        return name.startswith(self.prefixes) or (self.rx is not None and self.rx.match(name) is not None)


def _relative(pattern: str) -> str:
    """An `exclude` pattern or `collections_dir` as a path from the archive root."""
    while pattern.startswith(("./", "/")):
        pattern = pattern[1:] if pattern.startswith("/") else pattern[2:]
    return pattern


def _collections_dir(path: Path, value: str | None) -> str:
    """`collections_dir` as a folder below the root ("" when unset); one that leaves the root is refused."""
    folder = _relative(value or "").rstrip("/")
    if folder in ("", "."):
        return ""
    if ".." in folder.split("/") or "\x00" in folder:
        raise ArchiveError(f"cannot use {path}: `collections_dir` must be a folder inside the archive")
    return folder


class _Exclusion:
    """Whether a path from the archive root (a folder's or a file's) is excluded, as Jekyll matches its
    `exclude`: a pattern matches the paths it begins (a plain prefix: `news` leaves out `newsletter/`
    too, as in Jekyll) or, with `*`, `?` or `[`, as a glob whose `*` crosses folders."""

    def __init__(self, patterns: tuple[str, ...]):
        self.prefixes = tuple(p for p in patterns if not any(c in p for c in "*?["))
        # each glob with the plain text before its first wildcard: only paths that begin with it match
        self.globs = [(re.split(r"[*?\[]", p, maxsplit=1)[0], p) for p in patterns if p not in self.prefixes]
        self.rx = _globs([p for _, p in self.globs])

    def __call__(self, rel: str, folder: bool) -> bool:
        if (rel + "/" if folder else rel).startswith(self.prefixes):
            return True
        return self.rx is not None and self.rx.match(rel) is not None

    def files_in(self, rel_folder: str) -> Callable[[str], bool] | None:
        """What leaves out a file of a folder that is not left out itself: the patterns that can reach
        into it, asked once a folder instead of every pattern once a file (most folders: none); None
        when no pattern can."""
        inside = rel_folder.rstrip("/") + "/" if rel_folder not in ("", ".") else ""
        prefixes = tuple(p for p in self.prefixes if p.startswith(inside))
        rx = _globs([p for lead, p in self.globs if lead.startswith(inside) or inside.startswith(lead)])
        if not prefixes and rx is None:
            return None
        return lambda rel: rel.startswith(prefixes) or (rx is not None and rx.match(rel) is not None)


def _globs(patterns: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns)) if patterns else None


@dataclass
class Walk:
    """What an archive walk found besides usable files: problems to report (path, reason), and paths that
    exist but could not be used this time (an unreadable folder, a file that cannot be stat'ed): their
    indexed posts must be kept, never taken for deleted."""

    problems: list[tuple[str, str]] = field(default_factory=list)
    kept_folders: list[str] = field(default_factory=list)  # relative folder paths, with a trailing "/"
    kept_files: set[str] = field(default_factory=set)
    # folders of the site outside its _posts folders that cannot be read (a volume's lost+found, a
    # private folder): kept, and reported only when indexed posts lie under them (`unread_problems`),
    # rather than at every sync for folders that never held a post
    unread_site_folders: list[tuple[str, str]] = field(default_factory=list)

    def keeps(self, rel: str) -> bool:
        return rel in self.kept_files or any(rel.startswith(f) for f in self.kept_folders)

    def unread_problems(self, indexed: Iterable[str]) -> list[tuple[str, str]]:
        """The unreadable site folders under which some of the `indexed` paths lie, as problems."""
        if not self.unread_site_folders:
            return []
        holding = {f for rel in indexed for f, _ in self.unread_site_folders if rel.startswith(f)}
        return [(f, why) for f, why in self.unread_site_folders if f in holding]


def _stem(rel: str) -> str:
    """A post file's name without its extension: the post's id (`2024-05-01-slug`)."""
    return os.path.basename(rel).rsplit(".", 1)[0]


def dated_name(rel: str) -> bool:
    """Whether a post file's name is one Jekyll itself publishes: `YYYY-MM-DD-slug.ext` (its posts
    reader skips other names; a site's plugin may not)."""
    return _FILENAME.match(_stem(rel)) is not None


def inside(path: str, roots: tuple[str, ...]) -> bool:
    """Whether a resolved path lies inside one of the resolved root folders."""
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def iter_post_files(cfg: ArchiveConfig, walk: Walk | None = None) -> Iterator[tuple[str, int, int]]:
    """Yield (path relative to the archive root, mtime_ns, size) of every post file, in no set order.

    Posts are the files in the archive's `_posts` folders, as Jekyll finds them: the root's and those of
    its folders at any depth (`news/_posts/`), leaving out what Jekyll leaves out (names starting with
    `.`, `_` or `#` or ending with `~`, and `exclude` of _config.yml). Only regular files whose real path
    is inside the archive are yielded. Symlinks are followed when they stay inside the archive (a real
    folder is walked once, through its own path before any link to it, so a post's path does not
    depend on the order folders are listed in and a loop ends); anything else named like a post (a
    symlink out of the archive, a dangling or looping symlink, a FIFO or device, a file over the size
    cap), a `_posts` symlink out of the archive and every folder that cannot be read are reported in
    `walk`. Only the root's `_posts` may itself be a symlink to elsewhere.
    """
    walk = walk if walk is not None else Walk()
    root = str(cfg.root).rstrip(os.sep) + os.sep
    roots = cfg.roots
    cap = cfg.max_post_bytes
    excluded = _Exclusion(cfg.exclude)
    included = _Inclusion(cfg.include)

    def rel_of(path: str) -> str:
        return path[len(root) :] if path.startswith(root) else os.path.relpath(path, cfg.root)

    seen: set[tuple[str, bool]] = set()  # (real folder, walked as a posts folder)
    # (folder, whether it is a posts folder or inside one): real folders first, symlinked ones after
    site = str(cfg.site_dir)
    stack: list[tuple[str, bool]] = [(str(cfg.posts_dir), True) if cfg.posts_only else (site, False)]
    linked: list[tuple[str, bool]] = []
    while stack or linked:
        folder, in_posts = stack.pop() if stack else linked.pop()
        real_folder = os.path.realpath(folder)
        if (real_folder, in_posts) in seen:
            continue
        seen.add((real_folder, in_posts))
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            rel = "" if folder == str(cfg.root) else rel_of(folder).rstrip("/") + "/"
            problem = (rel or "./", f"cannot read folder: {exc.strerror or exc}; its posts are kept")
            walk.kept_folders.append(rel)
            if in_posts or folder == site:
                walk.problems.append(problem)
            else:
                walk.unread_site_folders.append(problem)
            continue
        folders: list[tuple[str, bool]] = []
        links: list[tuple[str, bool]] = []
        excluded_file = excluded.files_in(rel_of(folder)) if in_posts else None
        for entry in entries:
            name = entry.name
            posts_folder = not in_posts and name == "_posts"
            special = (name.startswith((".", "_", "#")) and not posts_folder) or name.endswith("~")
            if special and not included(name):
                continue
            is_post = in_posts and name.lower().endswith(POST_EXTENSIONS)
            if not is_utf8(name) or has_controls(name):
                if in_posts or posts_folder:
                    _bad_name(entry, is_post, rel_of, walk)
                continue
            try:
                if entry.is_symlink():
                    if not in_posts and not posts_folder and not entry.is_dir():
                        continue  # a site's page, asset or link to elsewhere: not a post
                    if excluded(rel_of(entry.path), not is_post) and not included(name):
                        continue
                    target = _follow_link(entry, is_post, roots, rel_of, walk, in_posts or posts_folder)
                    if target == "folder" and posts_folder and folder == site:
                        # the root's own _posts, a link to elsewhere: its posts are named from their
                        # real folder, as before newsbot read the site's other _posts folders (a new
                        # name would make every post new)
                        links.append((str(cfg.posts_dir), True))
                    elif target == "folder":
                        links.append((entry.path, in_posts or posts_folder))
                    if target != "file":
                        continue
                    st = os.stat(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    if not excluded(rel_of(entry.path), True) or included(name):
                        folders.append((entry.path, in_posts or posts_folder))
                    continue
                elif not is_post or (
                    excluded_file is not None and excluded_file(rel_of(entry.path)) and not included(name)
                ):
                    continue
                else:
                    st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we walk: it is gone
            except OSError as exc:
                if not is_post:
                    continue
                rel = rel_of(entry.path)
                walk.problems.append((rel, f"cannot read file: {exc.strerror or exc}"))
                walk.kept_files.add(rel)
                continue
            rel = rel_of(entry.path)
            if not stat.S_ISREG(st.st_mode):
                walk.problems.append((rel, "not a regular file (a FIFO, device or socket)"))
                continue
            if cap and st.st_size > cap:
                walk.problems.append((rel, f"file too large ({_mb(st.st_size)} > MAX_POST_BYTES {_mb(cap)})"))
                walk.kept_files.add(rel)
                continue
            yield rel, st.st_mtime_ns, st.st_size
        # walked in name order (popped from the end): where two routes lead to one folder, the same one
        # is taken at every sync
        stack.extend(sorted(folders, reverse=True))
        linked.extend(sorted(links, reverse=True))


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


def printable_path(path: str) -> str:
    """A path as text that can be stored and shown on one line: bytes that are not UTF-8 as `\\xff`
    escapes, control characters (a line break, an escape sequence) as `\\x0a`, `\\x1b`."""
    return escaped_controls(path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))


def _bad_name(entry: os.DirEntry, is_post: bool, rel_of, walk: Walk) -> None:
    """A post or folder whose name is not valid UTF-8 (a slug cut in the middle of a character, a file
    copied from a system with another encoding) or holds a control character (a line break, an escape
    sequence: it would forge log lines and reach terminals) is reported, with the name escaped, and
    skipped: it cannot be stored or shown as it is, and a sync that tried stopped at it. A post indexed
    under such a name before (control characters were once taken) is kept as it was, never taken for
    deleted: renamed, it is found moved. Other files are ignored, as ever."""
    try:
        folder = entry.is_dir()
    except OSError:
        folder = False
    what = "is not valid UTF-8" if not is_utf8(entry.name) else "holds control characters"
    raw = rel_of(entry.path)
    rel = printable_path(raw)
    if folder:
        walk.problems.append((rel + "/", f"folder name {what}: its posts are skipped (rename it)"))
        walk.kept_folders.append(raw + "/")
    elif is_post:
        walk.problems.append((rel, f"file name {what}: skipped (rename the file)"))
        walk.kept_files.add(raw)


# what newsbot reads of `_config.yml` as text
_CONFIG_KEYS = ("url", "baseurl", "timezone", "permalink", "collections_dir")
MAX_CONFIG_BYTES = 1 << 20


MAX_DEFAULT_SCOPES = 1000
MAX_DEFAULT_ITEMS = 50


def _post_defaults(path: Path, value: Any) -> tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]:
    """Jekyll's front matter defaults (`defaults:` in _config.yml) that apply to posts: each entry's
    scope (`path`, a prefix of the file's path from the archive root or a glob with `*`; `type`, absent
    or `posts`) and values. Ordered as Jekyll ranks them, the one that wins last: a longer path wins, then
    one with a type, then the later entry. As Jekyll, a `defaults` that is not a list and entries without
    a `values` mapping are ignored; so are values that are not text, numbers, booleans, dates or lists of
    at most 50 of them (an author object: nothing newsbot reads; the config may use YAML aliases, and a
    list of lists built from them would be expanded)."""
    if not isinstance(value, list):
        return ()
    if len(value) > MAX_DEFAULT_SCOPES:
        raise ArchiveError(f"cannot use {path}: `defaults` has over {MAX_DEFAULT_SCOPES} entries")
    ranked = []
    for i, entry in enumerate(value):
        values = entry.get("values") if isinstance(entry, dict) else None
        if not isinstance(values, dict):
            continue
        scope = entry.get("scope")
        scope = scope if isinstance(scope, dict) else {}
        kind = scope.get("type")
        if kind is not None and kind != "posts":
            continue  # (pages, drafts, collections)
        where = scope.get("path")
        where = where.strip("/") if isinstance(where, str) else ""
        pairs = tuple(
            (str(key), tuple(item) if isinstance(item, list) else item)
            for key, item in values.items()
            if _default_value_ok(item)
        )
        if pairs:
            ranked.append(((len(where), kind is not None, i), (where, pairs)))
    return tuple(d for _, d in sorted(ranked, key=lambda r: r[0]))


def _default_value_ok(item: Any) -> bool:
    scalar = (str, int, float, bool, date, type(None))
    if isinstance(item, list):
        return len(item) <= MAX_DEFAULT_ITEMS and all(isinstance(x, scalar) for x in item)
    return isinstance(item, scalar)


def _with_defaults(cfg: ArchiveConfig, rel_path: str, meta: dict[str, Any]) -> dict[str, Any]:
    """A post's front matter over the defaults whose scope holds it (see `_post_defaults`). Categories
    add up, as in Jekyll: the defaults' first, then the post's own. Below a `collections_dir`, paths are
    matched from that folder, as Jekyll matches them (a scope may name it or not: `news` and
    `content/news` both hold `content/news/_posts/x.md`)."""
    merged: dict[str, Any] = {}
    path = _below_collections(cfg, rel_path)
    for where, pairs in cfg.defaults:
        if _in_scope(path, where if "*" in where else _below_collections(cfg, where)):
            merged.update((k, list(v) if isinstance(v, tuple) else v) for k, v in pairs)
    if not merged:
        return meta
    out = merged | meta
    if merged.get("categories") is not None and meta.get("categories") is not None:
        out["categories"] = _as_list(merged["categories"]) + _as_list(meta["categories"])
    return out


def _below_collections(cfg: ArchiveConfig, path: str) -> str:
    """A path from the archive root as a path from its `collections_dir`, when it lies below it."""
    prefix = cfg.collections_dir + "/"
    return path[len(prefix) :] if cfg.collections_dir and path.startswith(prefix) else path


def _path_categories(cfg: ArchiveConfig, rel_path: str) -> list[str]:
    """The folders above a post's `_posts` folder (below the `collections_dir`), which Jekyll makes its
    first categories: `news/tech/_posts/x.md` is in news and tech."""
    folders = _below_collections(cfg, rel_path).split("/")[:-1]
    return folders[: folders.index("_posts")] if "_posts" in folders else []


def _in_scope(rel_path: str, where: str) -> bool:
    """Whether a scope path holds a file: a prefix of its path, or a glob whose `*` stands for one name
    (Jekyll globs the scope against the archive's files and folders: a file inside a match is held)."""
    if "*" not in where:
        return rel_path.startswith(where)
    names, pattern = rel_path.split("/"), where.split("/")
    return len(names) >= len(pattern) and all(map(fnmatch.fnmatchcase, names, pattern))


def _config_text(path: Path, key: str, value: Any) -> str | None:
    """A `_config.yml` value newsbot reads, as text. Anything but a scalar is refused with the key named:
    made into text, a list built from YAML aliases (a "billion laughs" of a few hundred bytes: aliases
    are allowed here, real configs use them) expanded to gigabytes, and the sync never started."""
    if value is None or value == "":
        return None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        if has_controls(str(value)):  # a line break or an escape sequence in every post's URL
            raise ArchiveError(f"cannot use {path}: `{key}` holds control characters")
        return str(value)
    raise ArchiveError(f"cannot use {path}: `{key}` must be text, not a {type(value).__name__}")


def _follow_link(
    entry: os.DirEntry, is_post: bool, roots: tuple[str, ...], rel_of, walk: Walk, report: bool
) -> str | None:
    """A symlink met by the walk: "folder" for a folder inside the archive (to walk), "file" for a
    post-named link to something inside the archive (the caller checks it is a regular file), else None.
    When `report` (a link in or to a posts folder), a post-named link that cannot be used, or a folder
    link out of the archive, is reported (an indexed post of that name is then deleted: as a post, the
    file is gone)."""
    rel = rel_of(entry.path)
    try:
        real = os.path.realpath(entry.path, strict=True)
    except OSError as exc:
        if is_post:
            loop = getattr(exc, "errno", None) == errno.ELOOP
            walk.problems.append(
                (rel, "symlink loop" if loop else "dangling symlink (its target is missing)")
            )
        return None
    folder = os.path.isdir(real)
    if not inside(real, roots):
        if is_post or (folder and report):
            walk.problems.append((rel, "symlink to outside the archive (not followed)"))
        return None
    if folder:
        return "folder"
    return "file" if is_post else None


# --- one post ----------------------------------------------------------------------------------


@dataclass
class Post:
    path: str
    id: str
    slug: str
    title: str
    date: datetime  # aware
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    url: str | None = None  # the story's own source link
    archive_url: str = ""
    summary: str = ""
    body: str = ""  # plain text, paragraphs separated by "\n"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text)[:200] or type(exc).__name__


MAX_LABELS = 50  # categories or tags kept per post
MAX_LABEL_CHARS = 100


def _scalars(value: Any, depth: int = 0) -> Iterator[str]:
    """The scalar texts in a front-matter value; nested lists are flattened (a mapping contributes
    nothing: it is not a name)."""
    if value is None or isinstance(value, dict):
        return
    if isinstance(value, (list, tuple, set)):
        if depth < 3:
            for v in value:
                yield from _scalars(v, depth + 1)
        return
    # YAML's escapes ("\x1b") make control characters the file did not hold as such
    yield ("true" if value else "false") if isinstance(value, bool) else without_controls(str(value))


def _text(value: Any) -> str:
    """A front-matter value shown as text (a title): its scalars joined by spaces, whitespace collapsed;
    a list is not shown as Python's repr of it (`['a', 'b']`), and a mapping is no text."""
    return " ".join(" ".join(_scalars(value)).split())


def _as_list(value: Any) -> list[str]:
    """Categories or tags: a list (nested lists flattened) or a space-separated string; duplicates
    dropped, at most MAX_LABELS names of at most MAX_LABEL_CHARS characters each."""
    if isinstance(value, (list, tuple, set)):
        items = [" ".join(v.split()) for v in _scalars(value)]
    else:
        items = list(_scalars(value))
        items = items[0].split() if items else []
    seen, out = set(), []
    for item in items:
        item = item[:MAX_LABEL_CHARS]
        if item and item not in seen:
            seen.add(item)
            out.append(item)
            if len(out) == MAX_LABELS:
                break
    return out


def parse_date(value: Any, tz: ZoneInfo) -> datetime | None:
    """A front-matter date (datetime, date or string) as an aware datetime, or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(), tz)
    if not isinstance(value, str):
        return None
    m = _DATE_STR.match(value)
    if not m:
        return _rfc2822_date(value, tz)
    y, _, mo, d, hh, mi, ss, frac, off = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        naive = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), micro)
    except ValueError:
        return None
    if not off:
        return naive.replace(tzinfo=tz)
    if off.upper() == "Z":
        return naive.replace(tzinfo=timezone.utc)
    sign = -1 if off[0] == "-" else 1
    hours_text, colon, minutes_text = off[1:].partition(":")
    if not colon and len(hours_text) > 2:  # +0800
        hours_text, minutes_text = hours_text[:2], hours_text[2:]
    hours, minutes = int(hours_text), int(minutes_text or 0)
    if hours > 23 or minutes > 59:
        return None
    return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))


def _rfc2822_date(value: str, tz: ZoneInfo) -> datetime | None:
    """A date as RSS and e-mail write it (`Wed, 01 May 2024 10:00:00 +0800`: scrapers copy a feed's
    pubDate), which Jekyll reads too (Ruby's Time.parse); without a zone (`-0000`), in `tz`."""
    if not (_RFC2822_HINT.match(value) and len(value) <= 100):
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=tz)


_RFC2822_HINT = re.compile(r"^\s*(?:[A-Za-z]{3},?\s+)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\b")


@lru_cache(maxsize=1024)
def _categories_path(categories: tuple[str, ...], slugified: bool) -> str:
    """The `:categories` (or `:slugified_categories`) part of a permalink: each category once, lower-cased
    (or slugified), percent-encoded. An archive has few sets of categories, and encoding a Chinese one
    anew for each post was ~3.5% of a sync's parsing of finews-sized posts."""
    names = map(slugify, categories) if slugified else (x.lower() for x in categories)
    return "/".join(quote(x) for x in dict.fromkeys(names))


# Jekyll's permalink placeholders: (local date, slug, categories) -> text.
_PLACEHOLDERS: dict[str, Callable[[datetime, str, list[str]], str]] = {
    "year": lambda d, s, c: f"{d.year:04d}",
    "short_year": lambda d, s, c: f"{d.year % 100:02d}",
    "month": lambda d, s, c: f"{d.month:02d}",
    "i_month": lambda d, s, c: str(d.month),
    "short_month": lambda d, s, c: d.strftime("%b"),
    "day": lambda d, s, c: f"{d.day:02d}",
    "i_day": lambda d, s, c: str(d.day),
    "short_day": lambda d, s, c: d.strftime("%a"),
    "y_day": lambda d, s, c: f"{d.timetuple().tm_yday:03d}",
    "week": lambda d, s, c: f"{d.isocalendar()[1]:02d}",
    "hour": lambda d, s, c: f"{d.hour:02d}",
    "minute": lambda d, s, c: f"{d.minute:02d}",
    "second": lambda d, s, c: f"{d.second:02d}",
    "title": lambda d, s, c: quote(slugify(s, pretty=True, cased=True)),
    "slug": lambda d, s, c: quote(slugify(s)),
    "categories": lambda d, s, c: _categories_path(tuple(c), False),
    "slugified_categories": lambda d, s, c: _categories_path(tuple(c), True),
    "long_month": lambda d, s, c: d.strftime("%B"),
    "long_day": lambda d, s, c: d.strftime("%A"),
    "w_year": lambda d, s, c: f"{d.isocalendar()[0]:04d}",
    "w_day": lambda d, s, c: str(d.isoweekday()),
    "output_ext": lambda d, s, c: ".html",
}
_PRETTY_KEEPS = frozenset("._~!$&'()+,;=@")
_PLAIN_SLUG = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def slugify(text: str, pretty: bool = False, cased: bool = False) -> str:
    """Jekyll's slug of a text (Utils.slugify): every run of characters other than letters, marks and
    digits (and, `pretty`, of ._~!$&'()+,;=@) becomes one hyphen, one at each end is dropped, and the
    result is lower-cased unless `cased`. `:title` is the pretty cased slug of the file name's (or the
    `slug` key's), `:slug` the plain one: `2024-05-01-Fed raises rates!.md` is at `Fed-raises-rates!`
    and `fed-raises-rates` (before, `Fed%20raises%20rates%21`: not the page Jekyll wrote)."""
    if _PLAIN_SLUG.fullmatch(text):  # (file names of scrapers: nothing to replace)
        return text if cased else text.lower()
    out: list[str] = []
    for ch in text:
        kind = unicodedata.category(ch)
        if kind[0] in "LM" or kind == "Nd" or (pretty and ch in _PRETTY_KEEPS):
            out.append(ch)
        elif not out or out[-1] != "-":  # (a hyphen in `out` is always one put for a run)
            out.append("-")
    slug = "".join(out)
    slug = slug[1:] if slug.startswith("-") else slug
    slug = slug[:-1] if slug.endswith("-") else slug
    return slug if cased else slug.lower()


# what a URL path may hold as it is (RFC 3986's pchar and "/"); the rest of a permalink's own text (a
# space, `?`, `#`, `%`, other scripts) is percent-encoded, as a browser asks for that page
_PATH_CHARS = "/!$&'()*+,;=:@~"


@lru_cache(maxsize=64)
def _template_parts(template: str) -> tuple[tuple[str, bool], ...]:
    """A permalink template as (text, is a placeholder) pieces; unknown `:names` stay literal, and literal
    text is percent-encoded where a URL path cannot hold it as it is."""
    parts, pos = [], 0
    for m in _PLACEHOLDER.finditer(template):
        if m.group(1) in _PLACEHOLDERS:
            parts += [(quote(template[pos : m.start()], safe=_PATH_CHARS), False), (m.group(1), True)]
            pos = m.end()
    parts.append((quote(template[pos:], safe=_PATH_CHARS), False))
    return tuple(parts)


def _permalink(cfg: ArchiveConfig, template: str, post_date: datetime, slug: str, cats: list[str]) -> str:
    local = post_date.astimezone(cfg.tz)
    path = "".join(
        _PLACEHOLDERS[text](local, slug, cats) if is_name else text
        for text, is_name in _template_parts(template)
    )
    # as Jekyll: no empty or dots-only segments (`/../`, `/./`), a leading slash, a trailing one kept
    segments = [part for part in path.split("/") if part.strip(".")]
    return cfg.site_url + "/" + "/".join(segments) + ("/" if segments and path.endswith("/") else "")


def now_utc() -> datetime:
    """The time posts' dates are compared with (one place, for the tests' clock)."""
    return datetime.now(timezone.utc)


def parse_post(cfg: ArchiveConfig, rel_path: str, raw: bytes, use_fast_path: bool = True) -> Post:
    """Parse one post file's bytes. Raises PostError with a clear reason."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PostError(f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    if not text.strip():
        raise PostError("empty file")
    # Leading blank lines before the opening --- are tolerated (Jekyll itself would not publish such a
    # file, but scrapers produce them and the post is otherwise fine).
    if not text.lstrip().startswith("---"):
        raise PostError("no YAML front matter (Jekyll only publishes files that start with ---)")
    try:
        fm_text, content = _HANDLER.split(text.strip())
    except ValueError as exc:
        raise PostError("front matter is not closed by a --- line") from exc
    # control characters (an escape sequence in a scraped title) would reach terminals, logs and chats:
    # dropped here from the front matter, and from the body's text by body_to_paragraphs
    fm_text = without_controls(fm_text)
    meta = fast_front_matter(fm_text) if use_fast_path else None
    try:
        if meta is None:
            meta = _HANDLER.load(fm_text) if fm_text.strip() else {}
    except PostError:
        raise
    except yaml.YAMLError as exc:
        raise PostError(f"bad front matter: {_one_line(exc)}") from exc
    except Exception as exc:  # PyYAML's constructors fail in odd ways on odd values (`!!timestamp` alone)
        raise PostError(f"bad front matter value: {type(exc).__name__}: {_one_line(exc)}") from exc
    if not isinstance(meta, dict):
        raise PostError("front matter is not a key: value mapping")
    if cfg.defaults:
        meta = _with_defaults(cfg, rel_path, meta)

    published = meta.get("published", True)
    if published is False or str(published).strip().lower() == "false":
        raise PostUnpublished("unpublished (published: false)")

    stem = _stem(rel_path)
    fm = _FILENAME.match(stem)
    file_day: date | None = None
    slug = stem
    if fm:
        slug = fm.group(4)
        try:
            file_day = date(int(fm.group(1)), int(fm.group(2)), int(fm.group(3)))
        except ValueError:
            file_day = None
    meta_slug = meta.get("slug")
    if meta_slug is not None and not isinstance(meta_slug, (dict, list, tuple, set, bool)) and str(meta_slug):
        # a list or mapping is no slug (its repr would be the page's URL): the file name's slug stays
        slug = without_controls(str(meta_slug))

    tz = cfg.tz
    post_date = parse_date(meta.get("date"), tz)
    if post_date is None:
        created = parse_date(meta.get("createtime"), tz)
        if file_day is not None:
            # The file name gives the day; a `createtime` on that same day gives the time too.
            if created is not None and created.astimezone(tz).date() == file_day:
                post_date = created
            else:
                post_date = datetime.combine(file_day, time(), tz)
        else:
            post_date = created
    if post_date is None:
        shown = meta.get("date")
        detail = f"date: {str(shown).strip()[:60]!r}" if shown is not None else "no date key"
        if fm and file_day is None:
            name = "-".join(fm.group(i) for i in (1, 2, 3))
            name_detail = f"the file name's date {name} is not a real date"
        else:
            name_detail = "no YYYY-MM-DD- in the file name"
        raise PostError(f"no usable date ({detail}; {name_detail}; no createtime)")
    try:
        post_date.timestamp(), post_date.astimezone(tz)
    except (OverflowError, ValueError, OSError):
        raise PostError(f"date out of range: {post_date.isoformat()}") from None
    now = now_utc()
    if post_date > now + MAX_FUTURE:
        # A typo (9999, 2204) would sit at the top of /latest forever; such a post is indexed once its
        # date is less than a year ahead.
        raise PostNotYet(
            f"date more than a year in the future: {post_date.date().isoformat()}",
            (post_date - MAX_FUTURE).timestamp(),
        )
    if post_date > now and not cfg.future:
        # Jekyll's site would not have it yet (its link: a 404), and /latest would show it first until
        # then; a typo of next year instead of this one, up there for months
        raise PostHeld(
            f"dated in the future ({post_date.isoformat()}): held until then", post_date.timestamp()
        )

    body_without_links, links = extract_source_links(content)
    paragraphs = body_to_paragraphs(content)

    meta_title = _text(meta.get("title"))
    title = truncate(meta_title, MAX_TITLE_CHARS)
    if not title and paragraphs:
        title = truncate(paragraphs[0], 80)
    if not title:
        title = slug
    if not paragraphs and not meta_title:
        raise PostError("empty post (no title and no body text)")

    source = None
    for key in _SOURCE_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
            source = without_controls(value).strip()
            break
    if source is None and links:
        source = without_controls(links[0])

    # as Jekyll: the folders', then `categories`, then `category` (each name once)
    categories = _as_list(
        [
            *_path_categories(cfg, rel_path),
            *_as_list(meta.get("categories")),
            *_as_list(meta.get("category")),
        ]
    )
    tags = _as_list(meta.get("tags")) or _as_list(meta.get("tag"))

    limit = cfg.summary_chars
    description = meta.get("description") or meta.get("excerpt")
    summary = ""
    if isinstance(description, str) and description.strip():
        summary = summarize(body_to_paragraphs(description), limit)
    if not summary:
        digest = leading_digest(body_without_links)
        if digest:
            summary = summarize([digest], limit)
    if not summary:
        summary = summarize(paragraphs, limit)

    template = meta.get("permalink")
    template = _PERMALINK_STYLES.get(template, template) if isinstance(template, str) else cfg.permalink
    return Post(
        path=rel_path,
        id=stem,
        slug=slug,
        title=title,
        date=post_date,
        categories=categories,
        tags=tags,
        url=source,
        archive_url=_permalink(cfg, template, post_date, slug, categories),
        summary=summary,
        body="\n".join(paragraphs),
    )
