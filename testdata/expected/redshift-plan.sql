CREATE SCHEMA IF NOT EXISTS "logs";
CREATE TABLE IF NOT EXISTS "logs"."cwl_copy_ledger" ("target" VARCHAR(1024) NOT NULL, "key" VARCHAR(4096) NOT NULL, "size" BIGINT NOT NULL, "etag" VARCHAR(256), "content_hash" VARCHAR(80) NOT NULL, "events" BIGINT NOT NULL, "rows" BIGINT NOT NULL, "filtered" BIGINT NOT NULL, "rejected" BIGINT NOT NULL, "batch_id" VARCHAR(128) NOT NULL, "loaded_at" TIMESTAMPTZ NOT NULL, PRIMARY KEY ("target", "key"));
CREATE TABLE IF NOT EXISTS "logs"."cwl_copy_quarantine" ("target" VARCHAR(1024) NOT NULL, "key" VARCHAR(4096) NOT NULL, "member" BIGINT, "event_id" VARCHAR(256), "offset" BIGINT, "kind" VARCHAR(64) NOT NULL, "reason" VARCHAR(65535) NOT NULL, "message" VARCHAR(65535) NOT NULL, "batch_id" VARCHAR(128) NOT NULL, "at" TIMESTAMPTZ NOT NULL);
-- plain
-- rows inserted: statement Some(10)
LOCK "logs"."cwl_copy_ledger";
DROP TABLE IF EXISTS "cwl_copy_objects";
CREATE TEMP TABLE "cwl_copy_objects" ("key" VARCHAR(4096), "size" BIGINT, "etag" VARCHAR(256), "content_hash" VARCHAR(80), "events" BIGINT, "rows" BIGINT, "filtered" BIGINT, "rejected" BIGINT);
COPY "cwl_copy_objects" FROM 's3://stage/cwl/b1/objects.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' MANIFEST FORMAT AS CSV GZIP NULL AS '\N' MAXERROR 0;
DELETE FROM "cwl_copy_objects" WHERE "key" IN (SELECT "key" FROM "logs"."cwl_copy_ledger" WHERE "target" = 'logs.integrated_user_log') OR "content_hash" IN (SELECT "content_hash" FROM "logs"."cwl_copy_ledger" WHERE "target" = 'logs.integrated_user_log');
DELETE FROM "cwl_copy_objects" WHERE "key" IN (SELECT o."key" FROM "cwl_copy_objects" o JOIN "cwl_copy_objects" e ON e."content_hash" = o."content_hash" AND e."key" < o."key");
DROP TABLE IF EXISTS "cwl_copy_stage";
CREATE TEMP TABLE "cwl_copy_stage" AS SELECT CAST(NULL AS VARCHAR(65535)) AS "cwl_copy_object", "event_time", "event_id", "message" FROM "logs"."integrated_user_log" WHERE 1 = 0;
COPY "cwl_copy_stage" FROM 's3://stage/cwl/b1/rows.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' MANIFEST FORMAT AS CSV GZIP NULL AS '\N' TIMEFORMAT 'auto' MAXERROR 0;
SELECT 1 / (CASE WHEN (SELECT COUNT(*) FROM "cwl_copy_stage" WHERE "cwl_copy_object" IN (SELECT "key" FROM "cwl_copy_objects")) = (SELECT COALESCE(SUM("rows"), 0) FROM "cwl_copy_objects") THEN 1 ELSE 0 END) AS "rows_match_the_ledger";
INSERT INTO "logs"."integrated_user_log" ("event_time", "event_id", "message") SELECT "event_time", "event_id", "message" FROM "cwl_copy_stage" WHERE "cwl_copy_object" IN (SELECT "key" FROM "cwl_copy_objects");
INSERT INTO "logs"."cwl_copy_ledger" ("target", "key", "size", "etag", "content_hash", "events", "rows", "filtered", "rejected", "batch_id", "loaded_at") SELECT 'logs.integrated_user_log', "key", "size", "etag", "content_hash", "events", "rows", "filtered", "rejected", 'b1', CAST('2026-12-01T00:00:00Z' AS TIMESTAMPTZ) FROM "cwl_copy_objects";
SELECT "key" FROM "cwl_copy_objects" ORDER BY "key";
-- dedup and quarantine
-- rows inserted: statement Some(10)
LOCK "logs"."cwl_copy_ledger";
DROP TABLE IF EXISTS "cwl_copy_objects";
CREATE TEMP TABLE "cwl_copy_objects" ("key" VARCHAR(4096), "size" BIGINT, "etag" VARCHAR(256), "content_hash" VARCHAR(80), "events" BIGINT, "rows" BIGINT, "filtered" BIGINT, "rejected" BIGINT);
COPY "cwl_copy_objects" FROM 's3://stage/cwl/b1/objects.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' MANIFEST FORMAT AS CSV GZIP NULL AS '\N' MAXERROR 0;
DELETE FROM "cwl_copy_objects" WHERE "key" IN (SELECT "key" FROM "logs"."cwl_copy_ledger" WHERE "target" = 'logs.integrated_user_log') OR "content_hash" IN (SELECT "content_hash" FROM "logs"."cwl_copy_ledger" WHERE "target" = 'logs.integrated_user_log');
DELETE FROM "cwl_copy_objects" WHERE "key" IN (SELECT o."key" FROM "cwl_copy_objects" o JOIN "cwl_copy_objects" e ON e."content_hash" = o."content_hash" AND e."key" < o."key");
DROP TABLE IF EXISTS "cwl_copy_stage";
CREATE TEMP TABLE "cwl_copy_stage" AS SELECT CAST(NULL AS VARCHAR(65535)) AS "cwl_copy_object", "event_time", "event_id", "message" FROM "logs"."integrated_user_log" WHERE 1 = 0;
COPY "cwl_copy_stage" FROM 's3://stage/cwl/b1/rows.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' MANIFEST FORMAT AS CSV GZIP NULL AS '\N' TIMEFORMAT 'auto' MAXERROR 0;
SELECT 1 / (CASE WHEN (SELECT COUNT(*) FROM "cwl_copy_stage" WHERE "cwl_copy_object" IN (SELECT "key" FROM "cwl_copy_objects")) = (SELECT COALESCE(SUM("rows"), 0) FROM "cwl_copy_objects") THEN 1 ELSE 0 END) AS "rows_match_the_ledger";
INSERT INTO "logs"."integrated_user_log" ("event_time", "event_id", "message") SELECT "event_time", "event_id", "message" FROM (SELECT "event_time", "event_id", "message", ROW_NUMBER() OVER (PARTITION BY "event_id" ORDER BY "cwl_copy_object") AS "cwl_copy_n" FROM "cwl_copy_stage" WHERE "cwl_copy_object" IN (SELECT "key" FROM "cwl_copy_objects")) AS d WHERE (d."cwl_copy_n" = 1 OR d."event_id" IS NULL) AND (d."event_id" IS NULL OR d."event_id" NOT IN (SELECT "event_id" FROM "logs"."integrated_user_log" WHERE "event_id" IS NOT NULL));
INSERT INTO "logs"."cwl_copy_ledger" ("target", "key", "size", "etag", "content_hash", "events", "rows", "filtered", "rejected", "batch_id", "loaded_at") SELECT 'logs.integrated_user_log', "key", "size", "etag", "content_hash", "events", "rows", "filtered", "rejected", 'b1', CAST('2026-12-01T00:00:00Z' AS TIMESTAMPTZ) FROM "cwl_copy_objects";
DROP TABLE IF EXISTS "cwl_copy_qstage";
CREATE TEMP TABLE "cwl_copy_qstage" ("key" VARCHAR(4096), "member" BIGINT, "event_id" VARCHAR(256), "offset" BIGINT, "kind" VARCHAR(64), "reason" VARCHAR(65535), "message" VARCHAR(65535));
COPY "cwl_copy_qstage" FROM 's3://stage/cwl/b1/quarantine.manifest' IAM_ROLE 'arn:aws:iam::123456789012:role/RedshiftCopy' MANIFEST FORMAT AS CSV GZIP NULL AS '\N' MAXERROR 0;
INSERT INTO "logs"."cwl_copy_quarantine" ("target", "key", "member", "event_id", "offset", "kind", "reason", "message", "batch_id", "at") SELECT 'logs.integrated_user_log', "key", "member", "event_id", "offset", "kind", "reason", "message", 'b1', CAST('2026-12-01T00:00:00Z' AS TIMESTAMPTZ) FROM "cwl_copy_qstage" WHERE "key" IN (SELECT "key" FROM "cwl_copy_objects");
SELECT "key" FROM "cwl_copy_objects" ORDER BY "key";
