"""The database schema: forward-only migrations, one per version."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 16

# Each entry upgrades the schema from version i to i+1. Append, never edit a released step.
MIGRATIONS: list[str] = [
    # 0 -> 1: posts, their categories/tags, the full-text index, metadata.
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE posts (
        rowid INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        date TEXT NOT NULL,
        ts INTEGER NOT NULL,
        categories TEXT NOT NULL,
        tags TEXT NOT NULL,
        url TEXT,
        archive_url TEXT NOT NULL,
        summary TEXT NOT NULL,
        body TEXT NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        hash TEXT NOT NULL,
        first_seen INTEGER NOT NULL
    );
    CREATE INDEX posts_ts ON posts (ts DESC, rowid DESC);
    CREATE INDEX posts_id ON posts (id);
    CREATE INDEX posts_first_seen ON posts (first_seen);
    -- kind 'c' = category, 't' = tag; key = folded name for matching, name = as written.
    CREATE TABLE post_terms (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        ts INTEGER NOT NULL,
        post INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (kind, key, ts, post)
    ) WITHOUT ROWID;
    CREATE INDEX post_terms_post ON post_terms (post);
    CREATE TABLE term_counts (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        name TEXT NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;
    -- Contentless: the texts are recomputed from posts when an entry must be deleted (store.segment).
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, tags, body, sub, chars,
        content = '',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    """,
    # 1 -> 2: the folded title and labels of each post, for ranking without folding at query time.
    # Existing rows get theirs when the next sync rebuilds the index (index_format is reset).
    """
    ALTER TABLE posts ADD COLUMN rank_text TEXT NOT NULL DEFAULT '';
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 2 -> 3: what the bot remembers: each chat's language, and the search queries behind paging buttons.
    """
    CREATE TABLE chat_prefs (chat_id INTEGER PRIMARY KEY, language TEXT);
    CREATE TABLE saved_queries (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE, used INTEGER NOT NULL);
    """,
    # 3 -> 4: following the archive: auto-post rules (from settings, admins, or users' subscriptions) and
    # the delivery ledger (one row per post and destination; pending -> sending -> sent | failed).
    """
    CREATE TABLE rules (
        id INTEGER PRIMARY KEY,
        chat TEXT NOT NULL,
        thread INTEGER NOT NULL DEFAULT 0,
        categories TEXT NOT NULL DEFAULT '[]',
        query TEXT NOT NULL DEFAULT '',
        origin TEXT NOT NULL,
        owner INTEGER,
        since_seq INTEGER NOT NULL,
        paused TEXT,
        created INTEGER NOT NULL,
        UNIQUE (chat, thread, categories, query, origin)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        rule INTEGER NOT NULL,
        chat TEXT NOT NULL,
        thread INTEGER NOT NULL DEFAULT 0,
        post INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        message_id INTEGER,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        UNIQUE (chat, thread, post)
    );
    CREATE INDEX deliveries_status ON deliveries (status, chat, thread, id);
    """,
    # 4 -> 5: the FTS texts arrive folded and segmented (space-separated words, one token per CJK
    # character), so FTS5's plain `ascii` tokenizer (every non-ASCII character is a token character)
    # splits them as unicode61 did, at about half the cost; diacritics are folded by store.text.fold.
    # No per-row column sizes: ranking is computed in Python (store.search). The next sync rebuilds it.
    """
    DROP TABLE posts_fts;
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, tags, body, sub, chars,
        content = '',
        columnsize = 0,
        tokenize = 'ascii'
    );
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 5 -> 6: files that failed to parse, with the (mtime, size) they failed at: not parsed again until
    # they change (a hostile file costs once, not at every sync). Saved search queries belong to the chat
    # their buttons were sent to (a forged button in another chat finds nothing); old buttons expire.
    """
    CREATE TABLE failed_files (
        path TEXT PRIMARY KEY,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        reason TEXT NOT NULL
    ) WITHOUT ROWID;
    DROP TABLE saved_queries;
    CREATE TABLE saved_queries (
        id INTEGER PRIMARY KEY,
        chat INTEGER NOT NULL,
        text TEXT NOT NULL,
        used INTEGER NOT NULL,
        UNIQUE (chat, text)
    );
    """,
    # 6 -> 7: the titles alone in a small second index (words and CJK characters), so search finds
    # every title match across the archive cheaply (store.search ranks title matches first). Filled by
    # the next sync's index rebuild.
    """
    CREATE VIRTUAL TABLE heads_fts USING fts5(
        title, chars,
        content = '',
        columnsize = 0,
        tokenize = 'ascii'
    );
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 7 -> 8: each post's folded title and labels (what ranking reads) in a narrow table of their own:
    # in `posts` they sat behind the body, so reading them for a thousand large posts read the bodies'
    # overflow pages too. posts.rank_text is no longer written (old values stay: clearing them would
    # rewrite every row of a large archive).
    """
    CREATE TABLE post_heads (rowid INTEGER PRIMARY KEY, rank_text TEXT NOT NULL);
    INSERT INTO post_heads (rowid, rank_text) SELECT rowid, rank_text FROM posts;
    """,
    # 8 -> 9: stories (store.stories): each post's story, with its date for the story's first report.
    # Existing posts are grouped by the next sync (stories_stale).
    """
    CREATE TABLE post_story (rowid INTEGER PRIMARY KEY, story INTEGER NOT NULL, ts INTEGER NOT NULL);
    CREATE INDEX post_story_story ON post_story (story, ts, rowid);
    CREATE INDEX post_story_ts ON post_story (ts);
    INSERT OR REPLACE INTO meta (key, value) SELECT 'stories_stale', '1' WHERE EXISTS (SELECT 1 FROM posts);
    """,
    # 9 -> 10: a `pairs` column (store.segment: adjacent common characters as one token), so phrases of
    # common characters are read from short doclists. The next sync chooses the archive's pair characters
    # and rebuilds the index.
    """
    DROP TABLE posts_fts;
    CREATE VIRTUAL TABLE posts_fts USING fts5(
        title, tags, body, sub, chars, pairs,
        content = '',
        columnsize = 0,
        tokenize = 'ascii'
    );
    DELETE FROM meta WHERE key = 'index_format';
    INSERT INTO meta VALUES ('index_format', 'stale');
    """,
    # 10 -> 11: chats that moved to a new id (a group upgraded to a supergroup): their rules, deliveries,
    # language and saved queries follow them, and a rule still naming the old id (AUTOPOST_CHATS, an
    # admin's command) is stored under the new one. Why a rule is paused: 'chat' (the chat refused the
    # bot: resumed when the bot may post there again) or 'filter' (its filter cannot run).
    """
    CREATE TABLE chat_moves (old TEXT PRIMARY KEY, new TEXT NOT NULL) WITHOUT ROWID;
    ALTER TABLE rules ADD COLUMN paused_by TEXT;
    UPDATE rules SET paused_by = CASE
        WHEN paused LIKE 'filter failed:%' OR paused LIKE 'its query is too costly%' THEN 'filter'
        ELSE 'chat' END
    WHERE paused IS NOT NULL;
    """,
    # 11 -> 12: finished deliveries are forgotten after a while (LedgerStore.forget_deliveries): the ledger
    # grew by a row per post and chat forever. This index finds them without reading the others.
    """
    CREATE INDEX deliveries_done ON deliveries (updated) WHERE status IN ('sent', 'failed', 'merged');
    """,
    # 12 -> 13: a delivery whose post is older than DELIVER_MAX_AGE_HOURS by the time its chat can take it
    # (a chat that refused the bot for a week, then took it back) is 'expired', not sent; it is forgotten
    # as the other finished ones are.
    """
    DROP INDEX deliveries_done;
    CREATE INDEX deliveries_done ON deliveries (updated)
        WHERE status IN ('sent', 'failed', 'merged', 'expired');
    """,
    # 13 -> 14: a file that cannot be indexed yet but will be without changing (a post dated in the
    # future) is remembered with the time to look at it again (`until`), instead of being read and parsed
    # at every sync; `kind`: 'error', or what is not one: 'held' (a post Jekyll does not publish yet, see
    # store.jekyll.PostHeld), 'unpublished' (`published: false`).
    """
    ALTER TABLE failed_files ADD COLUMN until INTEGER;
    ALTER TABLE failed_files ADD COLUMN kind TEXT NOT NULL DEFAULT 'error';
    """,
    # 14 -> 15: a delivery whose post left the archive before it was sent (deleted, or withdrawn with
    # `published: false`) is 'withdrawn', not 'failed': nothing failed; forgotten as the other finished ones.
    """
    DROP INDEX deliveries_done;
    CREATE INDEX deliveries_done ON deliveries (updated)
        WHERE status IN ('sent', 'failed', 'merged', 'expired', 'withdrawn');
    """,
    # 15 -> 16: the titles' index gets a `pairs` column (every two adjacent CJK characters of a title as
    # one token, store.segment.HeadTexts): a title substring is read from one short doclist instead of a
    # phrase of characters. Refilled from the stored titles in the same transaction
    # (PostsStore._migrated_to: ~3 s for 100,000 posts).
    """
    DROP TABLE heads_fts;
    CREATE VIRTUAL TABLE heads_fts USING fts5(
        title, chars, pairs,
        content = '',
        columnsize = 0,
        tokenize = 'ascii'
    );
    """,
]

# FTS5's own defaults, restored after a bulk load (Store.set_bulk_load).


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (sqlite3.complete_statement knows comments and literals)."""
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                out.append(buffer.strip())
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        out.append(buffer.strip())
    return out
