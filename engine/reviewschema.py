"""The tables of a folder's review database at the current schema version."""

from __future__ import annotations

SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE files (
    relative_path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    format TEXT NOT NULL DEFAULT '',
    sha256 TEXT,
    override TEXT CHECK (override IN ('keep', 'reject')),
    override_time TEXT,
    location TEXT NOT NULL DEFAULT 'folder'
        CHECK (location IN ('folder', 'quarantine', 'missing')),
    moved_to TEXT,
    -- The SHA-256 of the content the curator's decision was made on.
    override_sha256 TEXT
);
CREATE TABLE scores (
    relative_path TEXT NOT NULL,
    model_fingerprint TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    checked_ns INTEGER NOT NULL,
    score REAL,
    reconstruction REAL,
    latent REAL,
    colour REAL,
    PRIMARY KEY (relative_path, model_fingerprint)
);
CREATE TABLE thresholds (
    model_fingerprint TEXT PRIMARY KEY,
    threshold REAL NOT NULL
);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    destination TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'complete', 'undoing', 'undone')),
    started_ns INTEGER NOT NULL,
    undo_started_ns INTEGER,
    finished TEXT,
    note TEXT NOT NULL DEFAULT '',
    -- The move or undo of the batch that stopped before it reached every file
    -- while no report has shown that stop yet. NULL when there is none.
    unreported_stop TEXT CHECK (unreported_stop IN ('move', 'undo'))
);
CREATE TABLE batch_files (
    batch_id INTEGER NOT NULL REFERENCES batches (id),
    position INTEGER NOT NULL,
    relative_path TEXT NOT NULL,
    source TEXT NOT NULL,
    planned TEXT NOT NULL,
    device INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('planned', 'moved', 'failed', 'skipped', 'returned')),
    moved_to TEXT,
    error TEXT,
    PRIMARY KEY (batch_id, position)
);
"""
