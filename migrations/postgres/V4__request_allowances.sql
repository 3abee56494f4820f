-- The per-address limit of the auth routes, shared by every instance on
-- this database: for each client address (an IPv6 client by its /64), when
-- its allowance of requests is whole again (auth::limit). Rows whose time
-- has passed say nothing and are purged; the index finds them.
CREATE TABLE request_allowances (
    address     text   PRIMARY KEY,
    refilled_at bigint NOT NULL
);
CREATE INDEX request_allowances_refilled_at ON request_allowances (refilled_at);
