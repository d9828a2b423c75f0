package postgres

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// queries holds the backend's SQL, with its table names filled in. The
// writes come in pairs: [0] unfenced, [1] fenced by the leader lock (three
// more parameters after the statement's own: lock name, holder, epoch).
type queries struct {
	get, list string
	put, del  [2]string
	tx        [2]string

	snapshot     string
	stageCreate  string
	stageDrop    string
	restoreApply [2]string

	poll, takeoverLock, takeover, renew, release, leader string
}

// stageTable is the temporary table a Restore fills before it replaces
// the content in one statement. Temporary tables live in the session's
// own schema, so concurrent restores on other connections do not meet.
const stageTable = "vigil_restore"

func newQueries(kvID, haID pgx.Identifier) queries {
	kv, ha := kvID.Sanitize(), haID.Sanitize()
	r := strings.NewReplacer("{kv}", kv, "{ha}", ha, "{stage}", "pg_temp."+stageTable)
	f := func(s string) string { return r.Replace(s) }
	q := queries{
		get: f(`SELECT value FROM {kv} WHERE key = $1::bytea`),
		// The skip scan of List. $1 is the prefix, $2 its length. Each
		// step seeks, through the primary key's index, the first key at
		// or after a bound: for a leaf child k, the key right after k
		// (k || 0x00); for a directory child d/, the first key past its
		// subtree (prefix || d || '0', '0' being the byte after '/').
		// The walk ends at the first key not under the prefix.
		list: f(`WITH RECURSIVE walk(key) AS (
	(SELECT key FROM {kv} WHERE key > $1::bytea ORDER BY key LIMIT 1)
	UNION ALL
	SELECT (
		SELECT t.key FROM {kv} t
		WHERE t.key >= CASE
			WHEN position('\x2f'::bytea IN substring(w.key FROM $2::int + 1)) = 0
				THEN w.key || '\x00'::bytea
			ELSE substring(w.key FROM 1 FOR $2::int + position('\x2f'::bytea IN substring(w.key FROM $2::int + 1)) - 1) || '\x30'::bytea
		END
		ORDER BY t.key LIMIT 1)
	FROM walk w
	WHERE w.key IS NOT NULL AND substring(w.key FROM 1 FOR $2::int) = $1::bytea
)
SELECT key FROM walk WHERE key IS NOT NULL AND substring(key FROM 1 FOR $2::int) = $1::bytea`),

		snapshot:    f(`SELECT key, value FROM {kv} WHERE key > $1::bytea ORDER BY key LIMIT $2::int`),
		stageCreate: `CREATE TEMPORARY TABLE ` + stageTable + ` (key bytea PRIMARY KEY, value bytea NOT NULL)`,
		stageDrop:   `DROP TABLE IF EXISTS pg_temp.` + stageTable,

		// Takeover, in two steps sent as one batch (one implicit
		// transaction, run by the server without waiting for the
		// client). FOR UPDATE conflicts with the FOR KEY SHARE lock every
		// fenced write takes on the row, so the takeover waits for the
		// writes of the old epoch in flight, and no write of the old
		// epoch can commit after it. The conditional upsert then decides
		// on the row as it is after that wait; its WHERE is also this
		// transaction's first look at pg_stat_activity, whose content
		// PostgreSQL freezes at a transaction's first look, so that look
		// is not older than the row.
		poll:         f(`SELECT expires_at < clock_timestamp() OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = holder_pid) FROM {ha} WHERE name = $1::text`),
		takeoverLock: f(`SELECT 1 FROM {ha} WHERE name = $1::text FOR UPDATE`),
		takeover: f(`INSERT INTO {ha} AS h (name, holder, addr, epoch, expires_at, holder_pid)
VALUES ($1::text, $2::text, $3::text, 1, clock_timestamp() + $4::bigint * interval '1 microsecond', pg_backend_pid())
ON CONFLICT (name) DO UPDATE
SET holder = EXCLUDED.holder, addr = EXCLUDED.addr, epoch = h.epoch + 1,
	expires_at = EXCLUDED.expires_at, holder_pid = EXCLUDED.holder_pid
WHERE h.expires_at < clock_timestamp()
	OR NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = h.holder_pid)
RETURNING h.epoch`),
		// A renewal updates no key column, so it takes FOR NO KEY UPDATE,
		// which the writes' FOR KEY SHARE does not block: however busy
		// the leader, its renewals never wait for its writes.
		renew: f(`UPDATE {ha} SET expires_at = clock_timestamp() + $4::bigint * interval '1 microsecond', holder_pid = pg_backend_pid()
WHERE name = $1::text AND holder = $2::text AND epoch = $3::bigint AND expires_at > clock_timestamp()`),
		// Release expires the row rather than deleting it: the epoch
		// must only ever grow, or a fencing token could come back.
		release: f(`UPDATE {ha} SET expires_at = '-infinity', holder_pid = 0
WHERE name = $1::text AND holder = $2::text AND epoch = $3::bigint`),
		leader: f(`SELECT holder, addr, expires_at > clock_timestamp() AND EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = holder_pid)
FROM {ha} WHERE name = $1::text`),
	}
	q.put = writeStmts(r, 2, `w AS (INSERT INTO {kv} (key, value) SELECT $1::bytea, $2::bytea WHERE {guard}
	ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value)`)
	q.del = writeStmts(r, 1, `w AS (DELETE FROM {kv} WHERE key = $1::bytea AND {guard})`)
	// The ops are reduced to the last one per key before they are sent,
	// so the two parts touch different rows.
	q.tx = writeStmts(r, 3, `d AS (DELETE FROM {kv} WHERE key = ANY($1::bytea[]) AND {guard}),
w AS (INSERT INTO {kv} (key, value) SELECT k, v FROM unnest($2::bytea[], $3::bytea[]) AS u(k, v) WHERE {guard}
	ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value)`)
	// Restore: delete what the new content lacks, upsert the rest, so
	// the two parts touch different rows.
	q.restoreApply = writeStmts(r, 0, `d AS (DELETE FROM {kv} AS k WHERE {guard} AND NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.key = k.key)),
w AS (INSERT INTO {kv} (key, value) SELECT key, value FROM {stage} WHERE {guard}
	ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value)`)
	return q
}

// writeStmts builds the unfenced and the fenced form of a write made of
// data-modifying CTEs (which always run to completion, whatever the main
// query reads). In the fenced form every CTE is guarded by the lock row
// still being ours and unexpired, read under FOR KEY SHARE in the same
// statement, and the statement returns whether it was; the unfenced form
// returns true. n is the number of the statement's own parameters.
func writeStmts(r *strings.Replacer, n int, ctes string) [2]string {
	unfenced := "WITH " + strings.ReplaceAll(r.Replace(ctes), "{guard}", "true") + "\nSELECT true"
	fence := fmt.Sprintf(`fence AS MATERIALIZED (
	SELECT 1 FROM {ha} WHERE name = $%d::text AND holder = $%d::text AND epoch = $%d::bigint
		AND expires_at > clock_timestamp()
	FOR KEY SHARE)`, n+1, n+2, n+3)
	fenced := "WITH " + r.Replace(fence) + ",\n" +
		strings.ReplaceAll(r.Replace(ctes), "{guard}", "EXISTS (SELECT 1 FROM fence)") +
		"\nSELECT EXISTS (SELECT 1 FROM fence)"
	return [2]string{unfenced, fenced}
}
