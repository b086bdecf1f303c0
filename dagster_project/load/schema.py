"""The `raw` schema: what the loaders write (landing lines, the registry, their rejects)."""
from __future__ import annotations

DDL = """
create schema if not exists raw;
create table if not exists raw.snapshots (
    month date not null,            -- the landing folder (partition)
    file varchar not null,          -- landing file, relative to the landing root
    line integer not null,          -- 1-based line number in that file
    handle varchar not null,
    fetched_at timestamp not null,  -- UTC
    source varchar not null,        -- graph_api | demo | import
    status varchar not null,        -- ok | not_found | not_business | error
    error_code integer,
    error_subcode integer,
    error_message varchar,
    account_id varchar,
    username varchar,
    account_name varchar,
    followers_count bigint,
    follows_count bigint,
    media_count bigint,
    media_returned integer,
    loaded_at timestamp not null
);
create table if not exists raw.media (
    month date not null,
    file varchar not null,
    line integer not null,
    handle varchar not null,
    fetched_at timestamp not null,   -- of the snapshot that returned the media
    media_id varchar not null,
    posted_at timestamp not null,    -- UTC
    media_type varchar,
    media_product_type varchar,
    like_count bigint,               -- null: the owner hides like counts (omitted by the API)
    comments_count bigint,           -- null: omitted (comments turned off)
    permalink varchar,               -- an Instagram post URL or null (load/snapshots.py PERMALINK_RE)
    view_count bigint                -- reels only (business_discovery's view_count)
);
-- warehouses from before hidden likes: counts were 0 when omitted, no view_count
alter table raw.media alter column like_count drop not null;
alter table raw.media alter column comments_count drop not null;
alter table raw.media add column if not exists view_count bigint;
create table if not exists raw.rejected_lines (
    month date not null,
    file varchar not null,
    line integer not null,           -- 0 when the whole file is unreadable
    reason varchar not null,
    raw_line varchar,
    rejected_at timestamp not null
);
create table if not exists raw.load_files (
    month date not null,
    file varchar not null,
    bytes bigint,
    lines integer,
    loaded integer,
    rejected integer,
    loaded_at timestamp not null,
    permalinks_dropped integer       -- posts loaded with permalink NULL: not an Instagram post URL
);
-- warehouses from before the permalink rule (load/snapshots.py PERMALINK_RE)
alter table raw.load_files add column if not exists permalinks_dropped integer;
create table if not exists raw.accounts (
    handle varchar not null,
    territory_id varchar not null,
    source_url varchar,
    checked_on varchar,
    registry_file varchar not null,
    registry_line integer not null,
    loaded_at timestamp not null,
    ig_user_id varchar
);
alter table raw.accounts add column if not exists ig_user_id varchar;
create table if not exists raw.rejected_accounts (
    registry_file varchar not null,
    registry_line integer not null,
    raw_row varchar,
    reason varchar not null,
    rejected_at timestamp not null
);
"""


def ensure_schema(con) -> None:
    con.execute(DDL)
