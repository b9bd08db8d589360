"""The S3 side of the bench harness (run.sh --s3), with boto3 (a dependency
of moto[server], which run.sh installs).

    s3.py upload ENDPOINT BUCKET PREFIX HOURS DIR
        Creates BUCKET and puts every file under DIR (sorted, as cwl-copy
        walks a directory) at PREFIX + YYYY/MM/DD/HH/ + its file name: the
        objects spread evenly, in order, over HOURS Firehose hour prefixes
        from the hour of the first file's directory (DIR/YYYY/MM/DD/HH/…),
        so key order is the local order. Prints `from=… to=… objects=…
        bytes=… seconds=…` (from/to: a --from/--to range covering them).

    s3.py get ENDPOINT BUCKET PREFIX CONCURRENCY [LOG]
        Lists PREFIX and GETs every object with a pool of CONCURRENCY
        threads, each body read in 1 MiB chunks and discarded: what the
        server can deliver, the bound of cwl-copy's S3 rows. Prints
        `objects=… bytes=… list_seconds=… get_seconds=… get_cpu_seconds=…`
        (the GET phase's wall and this process's CPU), and appends the
        line to LOG when given.

Credentials and region come from the environment (run.sh sets moto's
dummy ones); addressing is path-style, as cwl-copy uses with an endpoint.
"""

import concurrent.futures
import datetime
import os
import sys
import time

import boto3
from botocore.config import Config


def client(endpoint, concurrency):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            max_pool_connections=max(10, concurrency),
            retries={"mode": "standard"},
        ),
    )


def upload(endpoint, bucket, prefix, hours, root):
    files = []
    for d, _, names in os.walk(root):
        files.extend(os.path.join(d, n) for n in names)
    files.sort(key=lambda p: os.path.relpath(p, root).encode())
    if not files:
        sys.exit(f"s3.py: no files under {root}")
    rel = os.path.relpath(files[0], root).split(os.sep)
    try:
        base = datetime.datetime(*map(int, rel[:4]))
    except (TypeError, ValueError):
        sys.exit(f"s3.py: {files[0]} is not under YYYY/MM/DD/HH/")
    s3 = client(endpoint, 8)
    s3.create_bucket(Bucket=bucket)

    def key(i, path):
        hour = base + datetime.timedelta(hours=i * hours // len(files))
        return f"{prefix}{hour:%Y/%m/%d/%H}/{os.path.basename(path)}"

    def put(job):
        i, path = job
        with open(path, "rb") as f:
            body = f.read()
        s3.put_object(Bucket=bucket, Key=key(i, path), Body=body)
        return len(body)

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(put, enumerate(files)))
    end = base + datetime.timedelta(hours=hours)
    print(f"from={base:%Y-%m-%dT%H} to={end:%Y-%m-%dT%H} objects={len(files)} "
          f"bytes={total} seconds={time.monotonic() - started:.2f}")


def get(endpoint, bucket, prefix, concurrency, log=None):
    s3 = client(endpoint, concurrency)
    started = time.monotonic()
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    listed, cpu = time.monotonic(), time.process_time()

    def fetch(k):
        body = s3.get_object(Bucket=bucket, Key=k)["Body"]
        n = 0
        while chunk := body.read(1 << 20):
            n += len(chunk)
        return n

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        total = sum(pool.map(fetch, keys))
    done = time.monotonic()
    line = (f"objects={len(keys)} bytes={total} "
            f"list_seconds={listed - started:.2f} get_seconds={done - listed:.2f} "
            f"get_cpu_seconds={time.process_time() - cpu:.2f}")
    print(line)
    if log:
        with open(log, "a") as f:
            print(line, file=f)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "upload" and len(args) == 5:
        upload(args[0], args[1], args[2], int(args[3]), args[4])
    elif cmd == "get" and len(args) in (4, 5):
        get(args[0], args[1], args[2], int(args[3]), *args[4:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
